"""Rule dp_vote (DP mode, privacy.dp.vote_share > 0): the private nearest-neighbour vote on the pool, released with
Gaussian noise; each class keeps its most voted images. Writes the keep flags and the run's composed budget."""

import json
import logging

import numpy as np

from histodistill.base import atomic_write_bytes, check_embedding_file, load_npy, load_npz, run_job, save_npz
from histodistill.generator import composed_epsilon
from histodistill.privacy import keep_most_voted, nearest_pool_votes, noisy_votes, removed_per_class
from histodistill.selection import embed, load_embedder

VOTE_SEED_OFFSET = 104729  # the vote's noise stream, apart from every other seeded draw of the run


def main(smk, device):
    log = logging.getLogger("histodistill")
    # σ of the vote was fixed with DP-SGD's when the denoiser was calibrated (dp.noise_multiplier_for); its record
    # is the one source of σ, δ and the accountant
    denoiser = json.load(open(smk.input.denoiser_budget))
    sigma, delta, accountant, share = (
        denoiser["vote_noise_multiplier"],
        denoiser["delta"],
        denoiser["accountant"],
        denoiser["vote_share"],
    )
    labels = load_npy(smk.input.labels)
    pool_emb = load_npy(smk.input.embeddings)
    check_embedding_file(smk.input.embeddings, pool_emb, len(labels))
    real = load_npz(smk.input.real, required=("train_labels",), only_required=True)
    model = load_embedder(smk.input.embedder[0], device) if smk.input.embedder else None
    private_emb = embed(np.load(smk.input.train_images), model, device)
    votes = nearest_pool_votes(private_emb, real["train_labels"], pool_emb, labels)
    noisy = noisy_votes(votes, sigma, smk.params.seed + VOTE_SEED_OFFSET)
    keep = keep_most_voted(noisy, labels, smk.params.vote_keep, smk.params.ipc)
    history = [(denoiser["noise_multiplier"], denoiser["sample_rate"], denoiser["steps"]), (sigma, 1.0, 1)]
    budget = {
        **denoiser,
        "epsilon": composed_epsilon(history, delta, accountant),
        "epsilon_denoiser": denoiser["epsilon"],
        "vote": {
            "noise_multiplier": sigma,
            "share": share,
            "keep": smk.params.vote_keep,
            "epsilon_alone": composed_epsilon([(sigma, 1.0, 1)], delta, accountant),
            "kept": int(keep.sum()),
            "pool": int(len(keep)),
            "voters": int(votes.sum()),
        },
    }
    log.info(
        "vote: %d private images over %d pool images, σ = %.4f; kept %d; ε = %.3f in all (denoiser %.3f)",
        votes.sum(),
        len(votes),
        sigma,
        keep.sum(),
        budget["epsilon"],
        denoiser["epsilon"],
    )
    save_npz(smk.output.keep, keep=keep, labels=labels)
    atomic_write_bytes(
        smk.output.removed, removed_per_class(labels, keep, {"dp_vote": ~keep}).to_csv(index=False).encode()
    )
    atomic_write_bytes(smk.output.budget, (json.dumps(budget, indent=2) + "\n").encode())


run_job(snakemake, main)  # noqa: F821

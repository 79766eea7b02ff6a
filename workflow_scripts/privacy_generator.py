"""Rule privacy_generator: the denoising-loss membership attack on the run's denoiser (members = a sample of the
train split, non-members = the audit holdout) and on its overtrained positive control."""

import logging

import numpy as np

from histodistill.base import NpyRows, load_checkpoint, load_npz, run_job, write_json
from histodistill.generator import denoiser_from_checkpoint, load_codec, load_denoiser
from histodistill.privacy import (
    attack_detects,
    attack_timesteps,
    balanced_indices,
    denoising_losses,
    generator_attack,
    generator_verdict,
    jsonable,
)


def main(smk, device):
    p = smk.params
    real = load_npz(smk.input.real, required=("train_labels", "test_images", "test_labels"), only_required=True)
    codec = load_codec(smk.input.autoencoder, device)
    log = logging.getLogger("histodistill")
    train_rows = NpyRows(smk.input.train_images)  # only the attacked rows are read
    test = (real["test_images"], real["test_labels"])

    def members_of(idx):
        return train_rows[idx], real["train_labels"][idx]

    def attack(model, meta, members, nonmembers):
        ts = attack_timesteps(meta["train_timesteps"])
        lm = denoising_losses(codec, model, meta, *members, ts, p.seed)
        ln = denoising_losses(codec, model, meta, *nonmembers, ts, p.seed)
        return {"timesteps": ts, **generator_attack(lm, ln, p.bootstrap, p.seed)}

    ctl_ckpt = load_checkpoint(smk.input.control, required=("members", "state_dict"))
    ctl_model, ctl_meta = denoiser_from_checkpoint(ctl_ckpt, device)
    idx = np.asarray(ctl_ckpt["members"])
    control = attack(ctl_model, ctl_meta, members_of(idx), test)
    control.update(
        detected=attack_detects(control, p.control_min_tpr),
        criterion=f"TPR at 1 % FPR >= {p.control_min_tpr}",
        members=f"{len(idx)} training images, {ctl_meta['steps_trained']} steps",
    )
    model, meta = load_denoiser(smk.input.denoiser, device)
    mi, ni = balanced_indices(len(real["train_labels"]), len(test[1]), p.seed)
    report = attack(model, meta, members_of(mi), (test[0][ni], test[1][ni]))
    report.update(
        members=f"{len(mi)} of the {len(real['train_labels'])} train images (random)",
        nonmembers=f"{len(ni)} audit-holdout (test) images",
        control=control,
        **generator_verdict(report, control, p.max_auc),
    )
    for name, r in (("denoiser", report), ("overtrained control", control)):
        log.info(
            "%s: AUC %.3f [%.3f, %.3f], TPR at 1 %% FPR %.3f [%.3f, %.3f]",
            name,
            r["auc"],
            *r["auc_ci95"],
            r["tpr_at_1pct_fpr"],
            *r["tpr_at_1pct_fpr_ci95"],
        )
    log.info("generator attack verdict: %s (%s)", report["verdict"], report["why"])
    write_json(smk.output[0], jsonable(report))


run_job(snakemake, main)  # noqa: F821

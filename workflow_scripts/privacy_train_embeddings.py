"""Rule privacy_train_embeddings: the embedder's features of the real train split (streamed; read by the privacy
reference and the privacy filter, so the train split is embedded once per dataset)."""

from histodistill.base import run_job, save_npy
from histodistill.privacy import embed_streamed, npz_member_shape, npz_row_chunks
from histodistill.selection import embed, load_embedder


def main(smk, device):
    model = load_embedder(smk.input.embedder, device)
    shape, _ = npz_member_shape(smk.input.real, "train_images")
    emb = embed_streamed(npz_row_chunks(smk.input.real, "train_images"), shape[1:], lambda x: embed(x, model, device))
    save_npy(smk.output[0], emb)


run_job(snakemake, main)  # noqa: F821

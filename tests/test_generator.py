"""Generator: corrupt checkpoints, both denoisers, compiled sampling and training against eager, streamed training,
snapshots, and the compile switches (resuming after SIGKILL is in tests/test_faults.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import REPO

from histodistill.base import HistodistillError
from histodistill.generator import load_codec, load_denoiser, sample_images


@pytest.mark.parametrize("content", [b"", b"garbage that is not a checkpoint", None])
def test_corrupted_checkpoint_error_names_the_file(tmp_path, content):
    path = tmp_path / "autoencoder.pt"
    if content is None:  # a real checkpoint, truncated
        torch.save({"vae_config": {}, "state_dict": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(HistodistillError, match=re.escape(str(path)) + ".*corrupted or truncated"):
        load_codec(path, torch.device("cpu"))


def _tiny_generator(tmp_path, arch: str = "unet"):
    """A generator trained for a few steps on 64 digits at 8 px: (codec, denoiser, meta)."""
    from histodistill.data import load_real
    from histodistill.generator import (
        AutoencoderConfig,
        DenoiserConfig,
        LatentCodec,
        build_autoencoder,
        train_autoencoder,
        train_denoiser,
    )

    real = load_real("digits", 8)
    images, labels = real["train_images"][:64], real["train_labels"][:64]
    ae_cfg = AutoencoderConfig(block_out_channels=(8, 8), latent_channels=2, norm_num_groups=4, steps=2)
    ae = train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False)
    vae = build_autoencoder(ae_cfg, 1, 8)
    vae.load_state_dict(ae["state_dict"])
    codec = LatentCodec(vae, ae["shift"], ae["scale"], 1)
    if arch == "dit":
        cfg = DenoiserConfig(
            arch="dit", transformer_layers=1, transformer_heads=2, transformer_head_dim=8, steps=3, batch_size=8
        )
    else:
        cfg = DenoiserConfig(block_out_channels=(8, 16), steps=3, batch_size=8)
    torch.save(
        train_denoiser(codec, images, labels, 10, cfg, 0, tmp_path / "ckpt.pt", progress=False), tmp_path / "d.pt"
    )
    model, meta = load_denoiser(tmp_path / "d.pt", torch.device("cpu"))
    return codec, model, meta


def test_transformer_denoiser_trains_and_samples(tmp_path):
    codec, model, meta = _tiny_generator(tmp_path, arch="dit")
    assert meta["arch"] == "dit" and type(model).__name__ == "DiTTransformer2DModel"
    out = sample_images(codec, model, meta, np.array([1, 2]), "ddim", 2, 3.0, 0, 2, progress=False)
    assert out.shape == (2, 8, 8, 1)


def test_compiled_denoiser_samples_what_the_eager_one_samples(tmp_path, caplog):
    from histodistill.generator import guided_latents, make_sampler

    codec, model, meta = _tiny_generator(tmp_path)
    y = torch.tensor([0, 4, 9])

    def latents(compiled: bool) -> torch.Tensor:
        from histodistill.base import compile_module

        sampler = make_sampler("ddim", meta["train_timesteps"], meta["beta_schedule"])
        sampler.set_timesteps(3)
        z = torch.randn((3, 2, 4, 4), generator=torch.Generator().manual_seed(0))
        return guided_latents(compile_module(model, compiled, "test"), y, 10, z, sampler, 2.0)

    eager = latents(False)
    with caplog.at_level("WARNING", logger="histodistill.base.accel"):
        compiled = latents(True)
    assert "torch.compile" not in caplog.text, "compilation failed and fell back to eager"
    assert torch.allclose(eager, compiled, atol=1e-4), (eager - compiled).abs().max()


def test_failed_compilation_falls_back_to_eager_with_a_warning(tmp_path, monkeypatch, caplog):
    from histodistill.base import accel

    codec, model, meta = _tiny_generator(tmp_path)

    def broken_compile(fn, **kwargs):
        def fails(*args, **kw):
            raise RuntimeError("no C compiler")

        return fails

    monkeypatch.setattr(accel.torch, "compile", broken_compile)
    labels = np.array([1, 2])
    with caplog.at_level("WARNING", logger="histodistill.base.accel"):
        out = sample_images(codec, model, meta, labels, "ddim", 2, 2.0, 0, 2, progress=False, compile_denoiser=True)
    assert "torch.compile of the denoiser failed (RuntimeError: no C compiler)" in caplog.text
    assert np.array_equal(out, sample_images(codec, model, meta, labels, "ddim", 2, 2.0, 0, 2, progress=False))


def test_precision_and_switches_resolve_per_device():
    from histodistill.base import resolve_precision, resolve_switch

    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_switch("auto", torch.device("cpu")) is False
    assert resolve_switch("auto", torch.device("cuda")) is True
    assert resolve_switch(False, torch.device("cuda")) is False
    with pytest.raises(HistodistillError, match="precision: unknown 'fp16'"):
        resolve_precision("fp16", torch.device("cpu"))


def test_streamed_generator_training_equals_resident_training(tmp_path):
    """A train split above the size limits is streamed from uint8 (no float32 copy of the split, latents encoded
    per batch); the weights, latent statistics and reconstruction error equal those of resident training."""
    from histodistill.base import to_model_space
    from histodistill.data import load_real
    from histodistill.generator import AutoencoderConfig, DenoiserConfig, train_autoencoder, train_denoiser

    real = load_real("digits", 8)
    images, labels = real["train_images"][:600], real["train_labels"][:600]  # > one 512-image chunk
    ae_cfg = AutoencoderConfig(block_out_channels=(8, 8), latent_channels=2, norm_num_groups=4, steps=3, batch_size=16)
    resident = train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False)
    streamed = train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False, resident_limit=0)
    for key, value in resident["state_dict"].items():
        torch.testing.assert_close(streamed["state_dict"][key], value)
    # the chunked statistics equal torch's mean and (unbiased) std of all latent means at once
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_config(resident["vae_config"])
    vae.load_state_dict(resident["state_dict"])
    with torch.no_grad():
        means = vae.eval().encode(to_model_space(images)).latent_dist.mean
    for ckpt in (resident, streamed):
        assert ckpt["shift"] == pytest.approx(float(means.mean()), rel=1e-5)
        assert ckpt["scale"] == pytest.approx(float(1 / means.std()), rel=1e-5)
        assert ckpt["reconstruction_mse"] == pytest.approx(resident["reconstruction_mse"], rel=1e-6)

    codec = load_codec_from(resident, tmp_path)
    cfg = DenoiserConfig(block_out_channels=(8, 16), steps=3, batch_size=8, checkpoint_every=0)
    kept = train_denoiser(codec, images, labels, 10, cfg, 0, tmp_path / "a.pt", progress=False)
    per_batch = train_denoiser(
        codec, images, labels, 10, cfg, 0, tmp_path / "b.pt", progress=False, resident_limit=0, latent_limit=0
    )
    for key, value in kept["state_dict"].items():
        torch.testing.assert_close(per_batch["state_dict"][key], value, rtol=1e-4, atol=1e-6)


def test_compiled_generator_training_equals_eager_up_to_float_rounding(tmp_path, monkeypatch):
    """`generator.compile`: the denoiser and the autoencoder train through torch.compile (here the aot_eager backend: inductor needs a C
    compiler and ~20 s on 2 cores) and ends where eager training ends."""
    from histodistill.data import load_real
    from histodistill.generator import AutoencoderConfig, DenoiserConfig, train_autoencoder, train_denoiser

    real = load_real("digits", 8)
    images, labels = real["train_images"][:200], real["train_labels"][:200]
    ae_cfg = AutoencoderConfig(block_out_channels=(8, 8), latent_channels=2, norm_num_groups=4, steps=2, batch_size=16)
    codec = load_codec_from(train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False), tmp_path)
    cfg = DenoiserConfig(block_out_channels=(8, 16), steps=4, batch_size=8, checkpoint_every=0)
    eager = train_denoiser(codec, images, labels, 10, cfg, 0, tmp_path / "a.pt", progress=False)
    calls = []
    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **kw: calls.append(kw) or real_compile(fn, backend="aot_eager", **kw)
    )
    compiled = train_denoiser(codec, images, labels, 10, cfg, 0, tmp_path / "b.pt", progress=False, compiled=True)
    assert calls == [{"dynamic": False, "mode": "default"}]
    for key, value in eager["state_dict"].items():
        torch.testing.assert_close(compiled["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    ae_compiled = train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False, compiled=True)
    assert len(calls) == 3  # the encoder and the decoder
    ae_eager = train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False)
    for key, value in ae_eager["state_dict"].items():
        torch.testing.assert_close(ae_compiled["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    assert ae_compiled["scale"] == pytest.approx(ae_eager["scale"], rel=1e-4)


def test_generator_training_from_disk_reads_batches_never_the_whole_split(tmp_path):
    """The generator rules read the train split from data/train_images.npy (`NpyRows`): above the size limit every
    read is one batch or one encoder chunk (<= 512 rows), never the split, and the weights and statistics equal
    those of training on the array in memory."""
    from histodistill.base import NpyRows, save_npy
    from histodistill.data import load_real
    from histodistill.generator import AutoencoderConfig, DenoiserConfig, train_autoencoder, train_denoiser

    real = load_real("digits", 8)
    images, labels = real["train_images"][:600], real["train_labels"][:600]  # > one 512-image chunk
    save_npy(tmp_path / "train_images.npy", images)
    reads: list[int] = []

    class CountedRows(NpyRows):
        def __getitem__(self, key):
            out = super().__getitem__(key)
            reads.append(len(out))
            return out

    rows = CountedRows(tmp_path / "train_images.npy")
    ae_cfg = AutoencoderConfig(block_out_channels=(8, 8), latent_channels=2, norm_num_groups=4, steps=3, batch_size=16)
    in_memory = train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False, resident_limit=0)
    from_disk = train_autoencoder(rows, ae_cfg, 0, torch.device("cpu"), progress=False, resident_limit=0)
    assert reads and max(reads) <= 512 < len(images)
    for key, value in in_memory["state_dict"].items():
        torch.testing.assert_close(from_disk["state_dict"][key], value)
    for key in ("shift", "scale", "reconstruction_mse"):
        assert from_disk[key] == in_memory[key]

    reads.clear()
    codec = load_codec_from(in_memory, tmp_path)
    cfg = DenoiserConfig(block_out_channels=(8, 16), steps=3, batch_size=8, checkpoint_every=0)
    kw = dict(progress=False, resident_limit=0, latent_limit=0)
    a = train_denoiser(codec, images, labels, 10, cfg, 0, tmp_path / "a.pt", **kw)
    b = train_denoiser(codec, rows, labels, 10, cfg, 0, tmp_path / "b.pt", **kw)
    assert reads and max(reads) <= 512 < len(images)
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value)


def load_codec_from(ckpt: dict, tmp_path) -> "object":
    path = tmp_path / "autoencoder.pt"
    torch.save(ckpt, path)
    return load_codec(path, torch.device("cpu"))


def test_snapshot_at_step_s_of_a_longer_run_is_the_final_checkpoint_of_an_s_step_run(tmp_path):
    """benchmarks/generator_leakage.py reads the leakage curve off one run: its snapshot at step 2 of 4 must be what a
    2-step run shares (constant learning rate after warm-up, same random stream), and step 4 must differ from it."""
    from histodistill.data import load_real
    from histodistill.generator import AutoencoderConfig, DenoiserConfig, train_autoencoder, train_denoiser

    real = load_real("digits", 8)
    images, labels = real["train_images"][:64], real["train_labels"][:64]
    ae_cfg = AutoencoderConfig(block_out_channels=(8, 8), latent_channels=2, norm_num_groups=4, steps=1, batch_size=16)
    codec = load_codec_from(train_autoencoder(images, ae_cfg, 0, torch.device("cpu"), progress=False), tmp_path)
    base = dict(block_out_channels=(8, 16), batch_size=8, checkpoint_every=0, warmup_steps=1)
    snapshots = {}
    longer = train_denoiser(
        codec, images, labels, 10, DenoiserConfig(steps=4, **base), 0, tmp_path / "a.pt", progress=False,
        on_step=lambda done, snapshot: snapshots.__setitem__(done, snapshot()),
    )  # fmt: skip
    short = train_denoiser(
        codec, images, labels, 10, DenoiserConfig(steps=2, **base), 0, tmp_path / "b.pt", progress=False
    )
    assert sorted(snapshots) == [1, 2, 3, 4] and snapshots[2]["steps_trained"] == 2
    for key, value in short["state_dict"].items():
        assert torch.equal(snapshots[2]["state_dict"][key], value), key
        assert torch.equal(snapshots[4]["state_dict"][key], longer["state_dict"][key]), key
    assert any(not torch.equal(snapshots[4]["state_dict"][k], v) for k, v in short["state_dict"].items())


def test_pool_compile_auto_compiles_only_shards_long_enough_to_repay_it():
    """Compiling costs 21-36 s per shard job; the paper preset's shards (100 per class x 9 classes, 50 steps) are too
    short to repay it, a 40x longer shard is not; never on CPU; explicit settings pass through."""
    import yaml

    from histodistill.base import sampling_compile

    preset = yaml.safe_load((REPO / "configs" / "pathmnist_64.yaml").read_text())
    images, steps = preset["pool"]["per_class"] * 9, preset["pool"]["steps"]
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert sampling_compile("auto", cuda, images, steps) is False
    assert sampling_compile("auto", cuda, 40 * images, steps) is True
    assert sampling_compile("auto", cpu, 40 * images, steps) is False
    assert sampling_compile(True, cpu, 1, 1) is True and sampling_compile(False, cuda, 10**9, 50) is False

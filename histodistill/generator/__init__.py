"""The class-conditional latent diffusion generator (diffusers parts): autoencoder, denoiser, sampling, the
synthetic pool, and DP-SGD training of the denoiser.

Every public name of the modules below is importable from here (loaded on first use, so importing one name
does not import the whole stage).
"""

from histodistill._exports import lazy_exports

_EXPORTS = {
    "ACCOUNTANTS": "dp",
    "AUTOENCODER_KEYS": "autoencoder",
    "AutoencoderConfig": "autoencoder",
    "CHUNK_PIXELS": "autoencoder",
    "DISTILLERS_READING_REAL": "dp",
    "DPConfig": "dp",
    "DenoiserConfig": "denoiser",
    "LATENT_LIMIT": "autoencoder",
    "LatentCodec": "autoencoder",
    "PRV_EPS_ERROR": "dp",
    "PrivateTraining": "dp",
    "REAL_REFERENCES": "dp",
    "SCHEDULERS": "sampling",
    "TRAINABLE": "dp",
    "build_autoencoder": "autoencoder",
    "build_denoiser": "denoiser",
    "check_delta": "dp",
    "codec_from_checkpoint": "autoencoder",
    "composed_epsilon": "dp",
    "denoise": "denoiser",
    "denoiser_from_checkpoint": "denoiser",
    "dp_config_from": "dp",
    "dp_curve_of": "dp",
    "dp_denoiser_settings": "dp",
    "dp_refusals": "dp",
    "epsilon_spent": "dp",
    "frechet_distance": "pool",
    "guided_latents": "sampling",
    "len_history": "dp",
    "load_codec": "autoencoder",
    "load_denoiser": "denoiser",
    "load_pool": "pool",
    "make_accountant": "dp",
    "make_sampler": "sampling",
    "make_train_scheduler": "denoiser",
    "noise_multiplier_for": "dp",
    "poisson_batch": "dp",
    "pool_quality": "pool",
    "public_dataset_of": "dp",
    "sample_images": "sampling",
    "sampling_batch_size": "sampling",
    "select_trainable": "dp",
    "train_autoencoder": "autoencoder",
    "train_denoiser": "denoiser",
    "vote_noise_multiplier": "dp",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

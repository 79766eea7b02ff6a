"""The dataset distillers of the feasibility study: distribution matching (DM), gradient matching (DC, DSA) and
trajectory matching (MTT).

Every public name of the modules below is importable from here (loaded on first use, so importing one name
does not import the whole stage).
"""

from histodistill._exports import lazy_exports

_EXPORTS = {
    "CHUNK": "zca",
    "DMConfig": "dm",
    "Distilled": "common",
    "ExpertConfig": "mtt",
    "GMConfig": "gradients",
    "INITS": "common",
    "MTTConfig": "mtt",
    "ORIGINAL_LOOPS": "gradients",
    "RealBatches": "common",
    "Zca": "zca",
    "check_init": "common",
    "distilled_under": "zca",
    "distribution_matching": "dm",
    "dm_loss": "dm",
    "fit_zca": "zca",
    "gradient_distance": "gradients",
    "gradient_matching": "gradients",
    "gradient_matching_loops": "gradients",
    "initial_images": "common",
    "initial_indices": "common",
    "load_zca": "zca",
    "mtt_unroll_bytes": "mtt",
    "start_images": "common",
    "train_expert": "mtt",
    "trajectory_matching": "mtt",
    "unwhiten": "zca",
    "whiten": "zca",
    "zca_arrays": "zca",
    "zca_from_arrays": "zca",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

"""The shared base every stage may use (and which uses no stage): user-facing errors, atomic file I/O, checkpoints,
the one image normalisation, precision and compilation, the GPU lease, the config's schema and the job runner.

Every public name of the modules below is importable from here (loaded on first use, so importing one name
does not import the whole stage).
"""

from histodistill._exports import lazy_exports

_EXPORTS = {
    "HistodistillError": "errors",
    "NpyRows": "io",
    "PRECISIONS": "accel",
    "RESIDENT_LIMIT": "images",
    "SAMPLING_COMPILE_MIN_IMAGE_STEPS": "accel",
    "SCHEMA": "config",
    "atomic_write_bytes": "io",
    "atomic_writer": "io",
    "autocast": "accel",
    "batch_source": "images",
    "check_embedding_file": "io",
    "check_schema": "config",
    "compile_module": "accel",
    "config_with_defaults": "config",
    "configure_logging": "runner",
    "damaged_file_error": "io",
    "dataset_id": "config",
    "epsilon_label": "config",
    "gpu_lease": "gpu",
    "lease_dir": "gpu",
    "load_checkpoint": "checkpoint",
    "load_npy": "io",
    "load_npz": "io",
    "normalise": "images",
    "npz_bytes": "io",
    "read_json": "io",
    "read_npy_header": "io",
    "resolve_precision": "accel",
    "resolve_switch": "accel",
    "run_job": "runner",
    "sampling_compile": "accel",
    "save_checkpoint": "checkpoint",
    "save_npy": "io",
    "save_npz": "io",
    "to_model_space": "images",
    "to_uint8": "images",
    "visible_gpus": "gpu",
    "with_schema_defaults": "config",
    "write_json": "io",
    "writer_rule": "io",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

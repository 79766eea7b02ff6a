"""Real data: the embedded datasets (scikit-learn digits, 5,000 MNIST digits), MedMNIST through the `medmnist`
package, a user's own image folder or `.npz`, and their train/val/test splits.

Every public name of the modules below is importable from here (loaded on first use, so importing one name
does not import the whole stage).
"""

from histodistill._exports import lazy_exports

_EXPORTS = {
    "DIGIT_BOX": "real",
    "EMBEDDED": "real",
    "GREY_MODES": "custom",
    "IMAGE_EXTENSIONS": "custom_sources",
    "LAYOUT_HELP": "custom_sources",
    "MEDMNIST_SIZES": "real",
    "PLAN_COLUMNS": "custom_sources",
    "SPLITS": "real",
    "check_custom_dataset": "custom",
    "check_dataset": "real",
    "check_group_disjoint": "custom_sources",
    "check_image_files": "custom",
    "check_train_counts": "custom",
    "class_location": "custom",
    "class_names": "real",
    "download_medmnist": "real",
    "embedded_images": "real",
    "grouped_split": "split",
    "imported_fingerprint": "custom",
    "load_custom": "custom",
    "load_digits_splits": "real",
    "load_medmnist_splits": "real",
    "load_mnist5k_splits": "real",
    "load_real": "real",
    "medmnist_fetch_hint": "real",
    "medmnist_filename": "real",
    "medmnist_info": "real",
    "medmnist_source_size": "real",
    "medmnist_url": "real",
    "plan_groups": "custom_sources",
    "public_digits": "real",
    "read_plan": "custom",
    "resize_images": "real",
    "source_fingerprint": "custom",
    "source_path": "custom",
    "split_counts": "split",
    "split_items": "split",
    "split_plan": "custom",
    "split_table": "custom",
    "square_resize": "custom",
    "stratified_indices": "split",
    "stratified_split": "split",
    "stratified_splits": "real",
    "validate_images": "real",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

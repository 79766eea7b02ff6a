"""Classifiers used as embedders and evaluators: ConvNet and ResNet18, DSA augmentation, training (InfoDist's and
the distillation protocol) and evaluation metrics.

Every public name of the modules below is importable from here (loaded on first use, so importing one name
does not import the whole stage).
"""

from histodistill._exports import lazy_exports

_EXPORTS = {
    "BasicBlock": "nets",
    "COMPILE_MIN_STEPS": "evaluate",
    "ConvNet": "nets",
    "OPS": "augment",
    "ResNet18": "nets",
    "SCHEDULES": "train",
    "TrainConfig": "train",
    "boundary_contrastive_loss": "train",
    "brightness": "augment",
    "build_classifier": "nets",
    "classification_metrics": "train",
    "colour": "augment",
    "contrast": "augment",
    "crop": "augment",
    "crop_range": "augment",
    "crop_shifts": "augment",
    "cutout": "augment",
    "dsa": "augment",
    "dsa_siamese": "augment",
    "embed_images": "train",
    "evaluate_subset": "evaluate",
    "evaluation_config": "evaluate",
    "evaluation_switches": "evaluate",
    "flip": "augment",
    "instance_norm": "nets",
    "lr_at": "train",
    "lr_for_epoch": "train",
    "op_chooser": "augment",
    "per_class_accuracy": "evaluate",
    "pick_device": "train",
    "predict_logits": "train",
    "rotate": "augment",
    "saturation": "augment",
    "scale": "augment",
    "train_classifier": "train",
    "train_classifiers": "train",
    "train_config_for": "evaluate",
    "training_steps": "evaluate",
    "validation_metrics": "evaluate",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

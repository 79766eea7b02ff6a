"""Classifier networks used as embedders and evaluators: ConvNet and ResNet18, both with instance norm.

Instance norm is GroupNorm with one group per channel (affine), as in the dataset-distillation literature.
"""

from __future__ import annotations

import torch
from torch import nn

from histodistill.base.errors import HistodistillError


def instance_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(channels, channels, affine=True)


class ConvNet(nn.Module):
    """`depth` × (conv3×3 → instance norm → ReLU → avg-pool 2) then a linear classifier."""

    def __init__(self, channels: int, n_classes: int, size: int, depth: int = 3, width: int = 64):
        super().__init__()
        if size // (2**depth) < 1:
            raise HistodistillError(f"ConvNet depth {depth} is too deep for {size}px images (needs size >= 2**depth)")
        layers: list[nn.Module] = []
        c = channels
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), instance_norm(width), nn.ReLU(inplace=True), nn.AvgPool2d(2)]
            c = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = width * (size // 2**depth) ** 2
        self.classifier = nn.Linear(self.feature_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = instance_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = instance_norm(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), instance_norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.n1(self.conv1(x)))
        return torch.relu(self.n2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet18 for small images: 3×3 stem, no max-pool, instance norm, global average pooling."""

    def __init__(self, channels: int, n_classes: int, size: int = 0, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False), instance_norm(width), nn.ReLU())
        blocks: list[nn.Module] = []
        cin = width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            for j in range(2):
                blocks.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.feature_dim = cin
        self.classifier = nn.Linear(cin, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def build_classifier(name: str, channels: int, n_classes: int, size: int, depth: int = 3, width: int = 64) -> nn.Module:
    """A classifier by name: 'convnet' (depth, width) or 'resnet18' (width = stem width)."""
    if name == "convnet":
        return ConvNet(channels, n_classes, size, depth=depth, width=width)
    if name == "resnet18":
        return ResNet18(channels, n_classes, size, width=width)
    raise HistodistillError(f"unknown network {name!r}; use 'convnet' or 'resnet18'")

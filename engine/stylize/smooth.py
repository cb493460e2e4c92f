"""Photorealistic smoothing after PhotoWCT: the closed-form solve (exact) and the guided filter (fast).

**Exact** (FastPhotoStyle's ``Propagator``): with W the 3x3-window matting affinity of the content
photo (Levin et al., eps 1e-7) and D its degrees, the output R solves

    (I - beta * D^-1/2 W D^-1/2) R = (1 - beta) Y,      beta = 0.9999

for the stylized image Y, channel by channel. The official code assembles W as a sparse matrix and
factorises it (sparse LU). Here W is never assembled: the matting affinity applied to a vector is a few
3x3 box sums plus a 3x3 matrix per window (the same algebra that makes the guided filter O(1) per
pixel), and the symmetric positive definite system is solved by preconditioned conjugate gradients,
all three channels at once, in float64, on the engine's device.

**Fast**: He et al.'s colour guided filter (content as the guide, box windows with reflected borders),
as FastPhotoStyle's ``GIFSmoothing`` runs it through OpenCV.
"""
from __future__ import annotations

import numpy as np
import torch

EPS_MATTING = 1e-7
BETA = 0.9999


# ---- exact: matrix-free matting affinity ------------------------------------------------------------

def _box_valid(t: torch.Tensor) -> torch.Tensor:
    """Sum over every 3x3 window whose pixels are all inside: (H, W, ...) -> (H-2, W-2, ...)."""
    h, w = t.shape[0] - 2, t.shape[1] - 2
    rows = t[0:h] + t[1:h + 1] + t[2:h + 2]
    return rows[:, 0:w] + rows[:, 1:w + 1] + rows[:, 2:w + 2]


def _box_full(t: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_box_valid`: each pixel sums the windows that contain it. (h, w, ...) ->
    (h+2, w+2, ...)."""
    pad = [0, 0] * (t.dim() - 2) + [2, 2, 2, 2]
    return _box_valid(torch.nn.functional.pad(t, pad))


class MattingAffinity:
    """W (the official ``__compute_laplacian`` values: (1 + (x_i - mu)^T inv (x_j - mu)) / 9 summed over
    the 3x3 windows holding i and j) for an (H, W, 3) float64 image in [0, 1], as an operator."""

    def __init__(self, img: torch.Tensor, eps: float = EPS_MATTING):
        x = img.to(torch.float64)
        self.x = x
        n = 9.0
        mu = _box_valid(x) / n                                            # (h, w, 3)
        xx = _box_valid(x[..., :, None] * x[..., None, :]) / n           # (h, w, 3, 3)
        cov = xx - mu[..., :, None] * mu[..., None, :]
        eye = torch.eye(3, dtype=x.dtype, device=x.device)
        self.inv = torch.linalg.inv(cov + (eps / n) * eye)                # (h, w, 3, 3)
        self.mu = mu
        ones = torch.ones(mu.shape[:2], dtype=x.dtype, device=x.device)
        self.degree = _box_full(ones)                                     # W 1 = windows holding i

    def diagonal(self) -> torch.Tensor:
        """W_ii: sum over windows holding i of (1 + d^T inv d) / 9, d = x_i - mu."""
        h, w = self.mu.shape[:2]
        acc = torch.zeros(self.x.shape[:2], dtype=self.x.dtype, device=self.x.device)
        for dy in range(3):
            for dx in range(3):
                d = self.x[dy:dy + h, dx:dx + w] - self.mu
                q = torch.einsum("hwi,hwij,hwj->hw", d, self.inv, d)
                acc[dy:dy + h, dx:dx + w] += (1.0 + q) / 9.0
        return acc

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        """W y for y (H, W, m)."""
        x = self.x
        s0 = _box_valid(y)                                                # (h, w, m)
        sxy = _box_valid(x[..., :, None] * y[..., None, :])               # (h, w, 3, m)
        s1 = sxy - self.mu[..., :, None] * s0[..., None, :]
        bk = torch.matmul(self.inv, s1) / 9.0                             # (h, w, 3, m)
        ak = s0 / 9.0 - (self.mu[..., :, None] * bk).sum(-2)              # (h, w, m)
        return _box_full(ak) + (x[..., :, None] * _box_full(bk)).sum(-2)


def solve_smoothing(stylized: torch.Tensor, content: torch.Tensor, beta: float = BETA, tol: float = 1e-9,
                    max_iter: int = 5000, progress=None) -> tuple[torch.Tensor, dict]:
    """R solving (I - beta D^-1/2 W D^-1/2) R = (1 - beta) Y, for (H, W, 3) float images in [0, 1]
    (``content`` builds W). Jacobi-preconditioned CG from R = Y, each channel until its residual is
    ``tol`` relative to its right-hand side. Returns R and {iterations, residual}."""
    wop = MattingAffinity(content)
    y = stylized.to(device=wop.x.device, dtype=torch.float64)
    dis = wop.degree.rsqrt()[..., None]                                   # D^-1/2

    def a_op(v):
        return v - beta * dis * wop.apply(dis * v)

    diag = (1.0 - beta * wop.diagonal() / wop.degree)[..., None]
    rhs = (1.0 - beta) * y
    x = y.clone()
    r = rhs - a_op(x)
    z = r / diag
    p = z.clone()
    rz = (r * z).sum((0, 1))
    bnorm = rhs.square().sum((0, 1)).sqrt().clamp_min(1e-300)
    it = 0
    res = (r.square().sum((0, 1)).sqrt() / bnorm).max().item()
    while res > tol and it < max_iter:
        ap = a_op(p)
        alpha = rz / (p * ap).sum((0, 1)).clamp_min(1e-300)
        x += alpha * p
        r -= alpha * ap
        it += 1
        res = (r.square().sum((0, 1)).sqrt() / bnorm).max().item()
        if progress is not None and it % 25 == 0:
            progress(it, res)
        z = r / diag
        rz_new = (r * z).sum((0, 1))
        p = z + (rz_new / rz.clamp_min(1e-300)) * p
        rz = rz_new
    return x, {"iterations": it, "residual": res}


def _to_unit(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).to(torch.float64) / 255.0


def _edge_pad(a: np.ndarray, p: int) -> np.ndarray:
    return np.pad(a, ((p, p), (p, p), (0, 0)), mode="edge")


def propagator_official(stylized_rgb: np.ndarray, content_rgb: np.ndarray, beta: float = BETA,
                        device=None, **kw) -> np.ndarray:
    """FastPhotoStyle's ``Propagator.process`` exactly, (H, W, 3) uint8 in -> (H-4, W-4, 3) uint8 out:
    crop 2 px, content resized to that (PIL bilinear), both edge-padded by 2, solve, crop, truncate."""
    from PIL import Image

    h1, w1 = stylized_rgb.shape[:2]
    h, w = h1 - 4, w1 - 4
    b = stylized_rgb[2:2 + h, 2:2 + w].astype(np.float64) / 255.0
    cont = np.asarray(Image.fromarray(np.ascontiguousarray(content_rgb)).resize((w, h), Image.BILINEAR))
    b = torch.from_numpy(_edge_pad(b, 2))
    c = _to_unit(_edge_pad(cont, 2))
    if device is not None:
        b, c = b.to(device), c.to(device)
    v, _ = solve_smoothing(b, c, beta, **kw)
    v = v[2:2 + h, 2:2 + w].cpu().numpy()
    return np.clip(v * 255.0, 0, 255.0).astype(np.uint8)


def smooth_exact(stylized_rgb: np.ndarray, content_rgb: np.ndarray, beta: float = BETA, device=None,
                 **kw) -> tuple[np.ndarray, dict]:
    """The closed-form smoothing at full size: the official system on the image edge-padded by 2 (so
    border pixels have whole windows, as the official code arranges by cropping), rounded to uint8."""
    if stylized_rgb.shape != content_rgb.shape:
        raise ValueError(f"stylized image {stylized_rgb.shape[1::-1]} and content {content_rgb.shape[1::-1]} "
                         "differ in size")
    b = _to_unit(_edge_pad(stylized_rgb, 2))
    c = _to_unit(_edge_pad(content_rgb, 2))
    if device is not None:
        b, c = b.to(device), c.to(device)
    v, info = solve_smoothing(b, c, beta, **kw)
    v = v[2:-2, 2:-2].cpu().numpy()
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8), info


# ---- fast: colour guided filter ----------------------------------------------------------------------

def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s colour guided filter on raw 0..255 values: (H, W, 3) guide, (H, W, C) source, box
    windows (2r+1)^2 with reflected borders (OpenCV BORDER_REFLECT), output rounded to uint8."""
    import cv2

    def box(a):
        return cv2.boxFilter(a, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)

    g = guide.astype(np.float64)
    p = src.astype(np.float64)
    h, w = g.shape[:2]
    mi = box(g)                                                           # (H, W, 3)
    ii = np.stack([box(g[..., i] * g[..., j]) for i in range(3) for j in range(3)], -1).reshape(h, w, 3, 3)
    var = ii - mi[..., :, None] * mi[..., None, :] + eps * np.eye(3)
    inv = np.linalg.inv(var)
    out = np.empty_like(p)
    for ch in range(p.shape[2]):
        mp = box(p[..., ch])
        cov = box(g * p[..., ch:ch + 1]) - mi * mp[..., None]             # (H, W, 3)
        a = np.einsum("hwij,hwj->hwi", inv, cov)
        b = mp - (a * mi).sum(-1)
        out[..., ch] = (box(a) * g).sum(-1) + box(b)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def smooth_fast(stylized_rgb: np.ndarray, content_rgb: np.ndarray, r: int = 35, eps: float = 1e-3) -> np.ndarray:
    """FastPhotoStyle's fast mode (``GIFSmoothing(r=35, eps=0.001)``)."""
    if stylized_rgb.shape != content_rgb.shape:
        raise ValueError(f"stylized image {stylized_rgb.shape[1::-1]} and content {content_rgb.shape[1::-1]} "
                         "differ in size")
    return guided_filter(content_rgb, stylized_rgb, r, eps)

"""Whitening and colouring transform (WCT) with PhotoWCT's semantics.

Matches FastPhotoStyle's ``PhotoWCT.__wct_core`` / ``__feature_wct`` / ``__compute_label_info``:

- content covariance = centred Gram / (N - 1) **plus the identity**; style covariance without it;
- eigenvalues below 1e-5 are dropped (when none is above, all are kept, as the official loop does);
- region by region: a label is transferred only when it covers more than 10 pixels in both images (at
  image resolution) and neither count is 100x the other; masks are resized to feature size with
  nearest-neighbour sampling (PIL NEAREST).

Where the official code leaves the content features untouched (a label missing or too small in the
style, or a region of fewer than 2 feature pixels, whose covariance is undefined), we use the
whole-image transform instead, so every pixel is stylized and nothing divides by zero.
"""
from __future__ import annotations

import numpy as np
import torch

EIG_MIN = 1e-5


def _sym_pow(cov: torch.Tensor, power: float) -> torch.Tensor:
    """cov^power over the eigenvalues >= EIG_MIN (all of them when none is), in float64."""
    e, v = torch.linalg.eigh(cov.double())
    keep = e >= EIG_MIN
    if not bool(keep.any()):
        keep = torch.ones_like(keep)
    e, v = e[keep].clamp_min(0.0), v[:, keep]
    if power < 0:
        e = e.clamp_min(torch.finfo(torch.float64).tiny)
    return (v * e.pow(power)) @ v.T


def wct_core(cont: torch.Tensor, styl: torch.Tensor) -> torch.Tensor:
    """(C, N) content and (C, M) style features -> (C, N) content features with the style's mean and
    covariance. Needs N >= 2 and M >= 2."""
    dt = cont.dtype
    # centred products in the features' precision (float32: the big matrix products), the 512x512
    # eigen-decompositions and the combined transform in float64
    c = cont - cont.mean(1, keepdim=True)
    s_mean = styl.mean(1, keepdim=True)
    s = styl - s_mean
    eye = torch.eye(c.shape[0], dtype=torch.float64, device=c.device)
    c_cov = (c @ c.T).double() / (c.shape[1] - 1) + eye
    s_cov = (s @ s.T).double() / (s.shape[1] - 1)
    t = (_sym_pow(s_cov, 0.5) @ _sym_pow(c_cov, -0.5)).to(dt)
    return torch.addmm(s_mean.to(dt), t, c)


def _resize_nearest(seg: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    if seg.shape == (h, w):
        return seg
    return np.asarray(Image.fromarray(seg).resize((w, h), Image.NEAREST))


def label_info(cont_seg: np.ndarray, styl_seg: np.ndarray) -> dict[int, bool]:
    """{label in the content: whether it is transferred region-wise} (official validity rule, counts at
    image resolution)."""
    out = {}
    cl, cc = np.unique(cont_seg, return_counts=True)
    sl, sc = np.unique(styl_seg, return_counts=True)
    scount = dict(zip(sl.tolist(), sc.tolist()))
    for lab, a in zip(cl.tolist(), cc.tolist()):
        b = scount.get(lab, 0)
        out[int(lab)] = bool(a > 10 and b > 10 and a / b < 100 and b / a < 100)
    return out


def feature_wct(cont: torch.Tensor, styl: torch.Tensor, cont_seg: np.ndarray | None = None,
                styl_seg: np.ndarray | None = None) -> torch.Tensor:
    """``cont`` (C, h, w), ``styl`` (C, h2, w2) single-image features; optional label maps (any size,
    integer) for region-wise transfer. Returns (1, C, h, w)."""
    c, h, w = cont.shape
    cv = cont.reshape(c, -1)
    sv = styl.reshape(styl.shape[0], -1)
    if cont_seg is None or styl_seg is None:
        return wct_core(cv, sv).view(1, c, h, w)
    cont_seg = np.ascontiguousarray(cont_seg)
    styl_seg = np.ascontiguousarray(styl_seg)
    if cont_seg.dtype not in (np.uint8, np.int32, np.uint16):
        cont_seg = cont_seg.astype(np.int32)
        styl_seg = styl_seg.astype(np.int32)
    valid = label_info(cont_seg, styl_seg)
    tc = torch.from_numpy(_resize_nearest(cont_seg, h, w).reshape(-1).astype(np.int64)).to(cv.device)
    ts = torch.from_numpy(_resize_nearest(styl_seg, styl.shape[1], styl.shape[2]).reshape(-1)
                          .astype(np.int64)).to(sv.device)
    out = cv.clone()
    fallback = torch.zeros(tc.shape[0], dtype=torch.bool, device=cv.device)
    for lab, ok in valid.items():
        ci = (tc == lab).nonzero()[:, 0]
        if ci.numel() == 0:
            continue
        si = (ts == lab).nonzero()[:, 0]
        if not ok or ci.numel() < 2 or si.numel() < 2:
            fallback[ci] = True
            continue
        out[:, ci] = wct_core(cv[:, ci], sv[:, si])
    if bool(fallback.any()):
        glob = wct_core(cv, sv)
        out[:, fallback] = glob[:, fallback]
    return out.view(1, c, h, w)

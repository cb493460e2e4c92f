"""Photorealistic image stylization (PhotoWCT, then smoothing), as FastPhotoStyle's ``PhotoWCT.transform``
followed by its ``Propagator`` (exact) or ``GIFSmoothing`` (fast).

The transform runs coarse to fine: relu4_1 of content and style are whitened/coloured and decoded with
the content's pooling indices, the result is encoded again at relu3_1, and so on down to relu1_1.
Region-wise transfer uses label maps of the content and the style (see :mod:`.wct`).

Stages report progress through ``progress(stage, fraction)`` and stop between stages when
``should_stop()`` returns True (:class:`Cancelled`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .wct import feature_wct

MAX_TRANSFORM_PIXELS = 1600 * 1200   # larger contents are transformed on a reduced copy, upsampled with the guide
MAX_STYLE_SIDE = 1024        # style photos are reduced to this long side (and to the content's): only
                             # their statistics matter


class Cancelled(RuntimeError):
    pass


class StylizeError(ValueError):
    """Bad input: the message says what is wrong."""


@dataclass
class StylizeResult:
    image: np.ndarray            # (H, W, 3) uint8
    stylized: np.ndarray         # before smoothing
    info: dict


def _to_tensor(img: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.array(img, dtype=np.float32)).permute(2, 0, 1)[None].div_(255.0).to(device)


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def _check_rgb(img, what: str) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise StylizeError(f"{what} must be an RGB image (H, W, 3) uint8, got {a.shape} {a.dtype}")
    if min(a.shape[:2]) < 16:
        raise StylizeError(f"{what} is {a.shape[1]}x{a.shape[0]}; at least 16x16 is needed (relu4_1 is 1/8 size)")
    return a


def _check_labels(lab, img: np.ndarray, what: str) -> np.ndarray | None:
    if lab is None:
        return None
    a = np.asarray(lab)
    if a.ndim != 2:
        raise StylizeError(f"{what} label map must be one integer id per pixel, got shape {a.shape}")
    if a.shape != img.shape[:2]:
        raise StylizeError(f"{what} label map is {a.shape[1]}x{a.shape[0]} but its photo is "
                           f"{img.shape[1]}x{img.shape[0]}")
    return a.astype(np.int32)


def colour_masks_to_labels(cont_mask: np.ndarray, styl_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two colour masks -> integer label maps with the same id for the same colour in both."""
    cols = np.concatenate([cont_mask[..., :3].reshape(-1, 3), styl_mask[..., :3].reshape(-1, 3)]).astype(np.int64)
    key = (cols[:, 0] << 16) | (cols[:, 1] << 8) | cols[:, 2]
    _, inv = np.unique(key, return_inverse=True)
    n = cont_mask.shape[0] * cont_mask.shape[1]
    return inv[:n].reshape(cont_mask.shape[:2]).astype(np.int32), inv[n:].reshape(styl_mask.shape[:2]).astype(np.int32)


class PhotoWCT:
    """The transform with a :class:`engine.models.photowct.PhotoWCTNets` (encoders e1..e4, decoders)."""

    def __init__(self, nets, device=None, precision: str = "auto"):
        """``precision``: 'fp32', or 'bf16' / 'auto' - bfloat16 activations and convolutions in the VGG
        encoders and decoders where the CPU multiplies bf16 in hardware (AMX / AVX512-BF16: the
        transform ~3x faster), float32 elsewhere; level 1, the WCT itself (covariances,
        eigen-decompositions) and the smoothing are float32/float64 either way. Quality: the decoders'
        reconstruction PSNR on CamVid val moves by at most 0.04 dB at levels 2-4 (tests/unit/
        test_photowct_bf16.py). Against the float32 transform the result differs mainly where bf16
        rounding flips a near-tie in a 2x2 max pool (1-5% of the indices), moving that detail by one
        pixel: ~40 dB between the two final images."""
        from ..devices import cpu_has_native_bf16

        if precision not in ("auto", "bf16", "fp32"):
            raise StylizeError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        self.device = torch.device(device or "cpu")
        self.nets = nets.to(self.device).eval()
        fast_bf16 = self.device.type == "cpu" and cpu_has_native_bf16()
        self.dtype = torch.bfloat16 if precision != "fp32" and fast_bf16 else torch.float32

    @property
    def precision(self) -> str:
        """What the VGG networks run in: 'bf16' or 'fp32'."""
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"

    @torch.inference_mode()
    def transform(self, content: np.ndarray, style: np.ndarray, content_labels=None, style_labels=None,
                  progress=None, should_stop=None) -> np.ndarray:
        content = _check_rgb(content, "content photo")
        style = _check_rgb(style, "style photo")
        if content_labels is not None and style_labels is not None and np.ndim(content_labels) == 3 \
                and np.ndim(style_labels) == 3:     # colour masks: same colour, same region
            content_labels, style_labels = colour_masks_to_labels(np.asarray(content_labels),
                                                                  np.asarray(style_labels))
        cl = _check_labels(content_labels, content, "content")
        sl = _check_labels(style_labels, style, "style")
        if (cl is None) != (sl is None):
            cl = sl = None                       # one side only: a global transform
        style, sl = _limit_style(style, sl, max(content.shape[:2]))
        n = self.nets
        step = _Stepper(progress, should_stop)
        x = _to_tensor(content, self.device)
        s = _to_tensor(style, self.device)
        step("encode", 0.0)
        _, _, sfeats = n.e4(s, all_levels=True, dtype=self.dtype)    # relu1_1 .. relu4_1 of the style
        img = x
        for lv in (4, 3, 2, 1):
            enc, dec = getattr(n, f"e{lv}"), getattr(n, f"d{lv}")
            # level 1 (conv1_1 and its 64 -> 3 decoder) stays float32: little to gain, and its
            # reconstruction lost 0.13 dB in bf16 where levels 2-4 lost 0.03-0.04 dB
            f, pools = enc(img, dtype=self.dtype if lv > 1 else torch.float32)
            cs = feature_wct(f[0].float(), sfeats[lv - 1][0].float(), cl, sl)
            img = dec(cs.to(f.dtype), pools)
            step(f"wct{lv}", 1.0)
        return _to_uint8(img.float())


class _Stepper:
    def __init__(self, progress, should_stop):
        self.progress, self.should_stop = progress, should_stop

    def __call__(self, stage: str, frac: float) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(f"stylization cancelled before {stage}")
        if self.progress is not None:
            self.progress(stage, frac)


def _limit_style(style: np.ndarray, labels, content_side: int = MAX_STYLE_SIDE):
    """A style photo larger than the content (or than MAX_STYLE_SIDE) is reduced to that long side:
    only its feature statistics are used, and they do not need more pixels than the content has."""
    from PIL import Image

    h, w = style.shape[:2]
    f = min(MAX_STYLE_SIDE, max(content_side, 256)) / max(h, w)
    if f >= 1:
        return style, labels
    size = (max(16, round(w * f)), max(16, round(h * f)))
    style = np.asarray(Image.fromarray(style).resize(size, Image.BICUBIC))
    if labels is not None:
        labels = np.asarray(Image.fromarray(labels.astype(np.int32)).resize(size, Image.NEAREST))
    return style, labels


def stylize(wct: PhotoWCT, content: np.ndarray, style: np.ndarray, content_labels=None, style_labels=None,
            smooth: str = "exact", progress=None, should_stop=None, device=None) -> StylizeResult:
    """PhotoWCT then smoothing ('exact', 'fast' or 'none'). Returns the final and the unsmoothed image."""
    from . import smooth as sm

    if smooth not in ("exact", "fast", "none"):
        raise StylizeError(f"smoothing must be exact, fast or none, not {smooth!r}")
    content = _check_rgb(content, "content photo")
    info: dict = {"smooth": smooth, "precision": wct.precision}
    h, w = content.shape[:2]
    if h * w > MAX_TRANSFORM_PIXELS:
        # PhotoWCT on a reduced copy (VGG activations of a 12 MP photo would need gigabytes), brought
        # back to full size with the photo itself as the guide
        from PIL import Image

        size = sm.reduced_size(w, h, MAX_TRANSFORM_PIXELS, 16)
        small = np.asarray(Image.fromarray(content).resize(size, Image.BICUBIC))
        cl = content_labels
        if cl is not None:
            cl = np.asarray(Image.fromarray(np.asarray(cl).astype(np.int32) if np.ndim(cl) == 2
                                            else np.asarray(cl, np.uint8)).resize(size, Image.NEAREST))
        stylized = wct.transform(small, style, cl, style_labels, progress, should_stop)
        stylized = sm.guided_upsample(content, small, stylized)
        info["transform_grid"] = list(size)
    else:
        stylized = wct.transform(content, style, content_labels, style_labels, progress, should_stop)
    _Stepper(progress, should_stop)("smooth", 0.0)
    if smooth == "none":
        out = stylized
    elif smooth == "fast":
        out = sm.smooth_fast(stylized, content)
    else:
        import math

        done = [0.0]

        def solve_progress(it, res):
            if progress is not None:      # fraction of the way (in log residual) from 1 to the tolerance
                done[0] = max(done[0], min(0.99, math.log(max(res, 1e-30)) / math.log(sm.EXACT_TOL)))
                progress("smooth", done[0])
        out, solve = sm.smooth_exact(stylized, content, device=device or wct.device, progress=solve_progress,
                                     should_stop=should_stop)
        if solve.get("stopped"):
            raise Cancelled("stylization cancelled during smoothing")
        info.update(solve)
    if progress is not None:
        progress("smooth", 1.0)
    return StylizeResult(out, stylized, info)

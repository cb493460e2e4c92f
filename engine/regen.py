"""Regenerate only the changed region of a real photo (the photo editor's class swap).

The user opens a photo, gets its label map (auto-label, smart select or painting), changes some classes,
and asks for a new image *there only*. :func:`regenerate_region`:

1. takes the pixels whose label changed (or any mask), grows them by ``grow`` pixels (label edges are
   approximate), and finds their bounding box plus a ``context`` margin;
2. runs the generator on that crop of the label map at about the model's native pixel density (the crop is
   scaled so its area matches the model's training area when it is larger, never upscaled beyond 2x);
3. resizes the result back to the crop and blends it into the photo inside the grown region only:
   ``feather`` blends with a weight that is 1 inside and falls off *inwards* at the border;
   ``seamless`` uses OpenCV's Poisson cloning (colours matched to the surroundings) inside the region.

Every pixel outside the grown region is bit-identical to the input photo, whatever the blend.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RegionResult:
    image: np.ndarray                 # (H, W, 3) uint8, the photo with the region regenerated
    region: np.ndarray                # (H, W) bool, where pixels may differ from the photo
    box: tuple[int, int, int, int]    # (x0, y0, x1, y1) of the crop the generator ran on
    gen_size: tuple[int, int]         # (w, h) the generator ran at


def changed_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"label maps differ in size: {before.shape[::-1]} vs {after.shape[::-1]}")
    return before != after


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    if px <= 0:
        return mask.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def crop_box(mask: np.ndarray, context: int) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    h, w = mask.shape
    return (max(0, int(xs.min()) - context), max(0, int(ys.min()) - context),
            min(w, int(xs.max()) + 1 + context), min(h, int(ys.max()) + 1 + context))


def generation_size(model_res: tuple[int, int], crop_wh: tuple[int, int]) -> tuple[int, int]:
    """About the model's training area at the crop's aspect, never more than 2x the crop."""
    W, H = model_res
    cw, ch = crop_wh
    s = min(2.0, np.sqrt(W * H / float(cw * ch)))
    return max(8, int(round(cw * s))), max(8, int(round(ch * s)))


def regenerate_region(model, photo: np.ndarray, labels: np.ndarray, mask: np.ndarray, seed: int = 0,
                      grow: int = 3, context: int = 32, blend: str = "feather", feather: float = 4.0,
                      instances: np.ndarray | None = None, controls=None) -> RegionResult:
    """See the module docstring. ``model`` is a loaded generator (registry.LoadedModel)."""
    import cv2

    from .registry import generate

    photo = np.ascontiguousarray(np.asarray(photo, dtype=np.uint8)[..., :3])
    labels = np.asarray(labels)
    mask = np.asarray(mask, bool)
    h, w = photo.shape[:2]
    if labels.shape != (h, w) or mask.shape != (h, w):
        raise ValueError(f"photo {w}x{h}, labels {labels.shape[1]}x{labels.shape[0]} and mask "
                         f"{mask.shape[1]}x{mask.shape[0]} must have one size")
    if blend not in ("feather", "seamless"):
        raise ValueError(f"blend must be 'feather' or 'seamless', not '{blend}'")
    region = _grow(mask, grow)
    box = crop_box(region, context)
    if box is None:
        return RegionResult(photo.copy(), region, (0, 0, 0, 0), (0, 0))
    x0, y0, x1, y1 = box
    crop_lab = labels[y0:y1, x0:x1]
    crop_inst = instances[y0:y1, x0:x1] if instances is not None else None
    gw, gh = generation_size(tuple(model.resolution), (x1 - x0, y1 - y0))
    gen = generate(model, crop_lab, crop_inst, seed=seed, size_wh=(gw, gh), controls=controls)
    gen = cv2.resize(gen, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA if gw > x1 - x0 else cv2.INTER_LINEAR)
    out = photo.copy()
    reg = region[y0:y1, x0:x1]
    if blend == "seamless":
        m8 = reg.astype(np.uint8) * 255
        # Poisson cloning needs the mask away from the image border: pad the crop by 2 px of photo
        pad = 2
        dst = cv2.copyMakeBorder(photo[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT)
        src = cv2.copyMakeBorder(gen, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        mm = cv2.copyMakeBorder(m8, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        ys, xs = np.nonzero(mm)
        cx, cy = (int(xs.min()) + int(xs.max()) + 1) // 2, (int(ys.min()) + int(ys.max()) + 1) // 2
        # OpenCV centres the mask's bounding box at (cx, cy): crop-aligned when src and dst match in size
        cloned = cv2.seamlessClone(src, dst, mm, (cx, cy), cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
        patch = out[y0:y1, x0:x1]
        patch[reg] = cloned[reg]
    else:
        wgt = reg.astype(np.float32)
        if feather > 0:
            # inward fall-off over the grown ring; the changed pixels themselves are fully regenerated
            wgt = np.minimum(wgt, cv2.GaussianBlur(wgt, (0, 0), feather))
            wgt[mask[y0:y1, x0:x1]] = 1.0
        patch = photo[y0:y1, x0:x1].astype(np.float32)
        mixed = patch + wgt[..., None] * (gen.astype(np.float32) - patch)
        res = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        sub = out[y0:y1, x0:x1]
        sub[reg] = res[reg]
    out[~region] = photo[~region]                      # exact outside, whatever happened above
    return RegionResult(out, region, box, (gw, gh))

"""Instance-layer operations on numpy arrays (no Qt): outlines, merge and split.

The instance layer holds one id per pixel (0 = no instance, as in Cityscapes ``instanceIds`` before
the class is folded in). Every function returns the bounding box it touched so the canvas and the
undo history work on that rectangle only.
"""
from __future__ import annotations

import cv2
import numpy as np

Rect = tuple[int, int, int, int]


def bbox(mask: np.ndarray) -> Rect | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def outlines(inst: np.ndarray) -> np.ndarray:
    """Pixels of an instance whose right, left, lower or upper neighbour belongs to another id — the
    pix2pixHD boundary map restricted to instances (id 0 never draws an outline of its own)."""
    e = np.zeros(inst.shape, bool)
    dx = inst[:, 1:] != inst[:, :-1]
    dy = inst[1:, :] != inst[:-1, :]
    e[:, 1:] |= dx
    e[:, :-1] |= dx
    e[1:, :] |= dy
    e[:-1, :] |= dy
    return e & (inst > 0)


def instance_colours(n: int = 65536) -> np.ndarray:
    """A fixed, well-spread colour per id (golden-ratio hues, HSV 0.75/0.95); id 0 is black."""
    hue = ((np.arange(n) * 0.618033988749895) % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hue, np.full(n, 191, np.uint8), np.full(n, 242, np.uint8)], -1)[None]
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    out[0] = 0
    return out


def merge_region(inst: np.ndarray, keep: int, drop: int) -> tuple[Rect, np.ndarray] | None:
    """Where instance ``drop`` is (its bbox and mask there), to be relabelled ``keep``."""
    if keep == drop or drop <= 0:
        return None
    m = inst == drop
    r = bbox(m)
    if r is None:
        return None
    return r, m[r[1]:r[3], r[0]:r[2]]


def split_parts(inst: np.ndarray, ident: int, cut: tuple[Rect, np.ndarray] | None = None,
                first_new: int | None = None) -> tuple[Rect, np.ndarray, np.ndarray] | None:
    """Split instance ``ident`` into its 4-connected parts, optionally cutting it first along ``cut``
    (a rectangle and mask, e.g. a line drawn across it; cut pixels join the part beside them).

    Returns ``(rect, before, after)`` for the instance's bounding box: the largest part keeps ``ident``,
    the others get fresh ids from ``first_new`` (default: the layer's maximum + 1). ``None`` when the
    instance is a single part.
    """
    if ident <= 0:
        return None
    m = inst == ident
    r = bbox(m)
    if r is None:
        return None
    x0, y0, x1, y1 = r
    sub = m[y0:y1, x0:x1]
    body = sub.copy()
    if cut is not None:
        (cx0, cy0, cx1, cy1), cm = cut
        ix0, iy0, ix1, iy1 = max(cx0, x0), max(cy0, y0), min(cx1, x1), min(cy1, y1)
        if ix0 < ix1 and iy0 < iy1:
            body[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] &= ~cm[iy0 - cy0:iy1 - cy0, ix0 - cx0:ix1 - cx0]
    n, comp, stats, _ = cv2.connectedComponentsWithStats(body.astype(np.uint8), connectivity=4)
    if n <= 2:
        return None
    if cut is not None:
        # cut pixels take the label of the nearest part (a distance transform from the parts)
        rest = sub & ~body
        if rest.any():
            _d, lab = cv2.distanceTransformWithLabels((~body).astype(np.uint8), cv2.DIST_L2, 3,
                                                      labelType=cv2.DIST_LABEL_PIXEL)
            # map each zero pixel's label to its component
            zeros = np.flatnonzero(body.reshape(-1))
            lut = np.zeros(int(lab.max()) + 1, np.int32)
            # distanceTransformWithLabels numbers the zero pixels of its input in raster order
            lut[lab.reshape(-1)[zeros]] = comp.reshape(-1)[zeros]
            comp = np.where(rest, lut[lab], comp)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1          # parts, largest first
    nxt = int(inst.max()) + 1 if first_new is None else int(first_new)
    before = inst[y0:y1, x0:x1].copy()
    after = before.copy()
    for j, k in enumerate(order[1:]):
        after[sub & (comp == k)] = nxt + j
    if int(after.max()) > 65535:
        raise ValueError("too many instances: ids are limited to 65535")
    return r, before, after

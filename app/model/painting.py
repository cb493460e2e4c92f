"""Label painting on numpy arrays: hard-edged dabs, strokes, fills — each touching only its bounding box.

No Qt here: the canvas, the undo stack and the benchmark all use these functions. A rectangle is
``(x0, y0, x1, y1)`` with exclusive ``x1``/``y1``.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

Rect = tuple[int, int, int, int]


@lru_cache(maxsize=256)
def brush_mask(diameter: int, shape: str = "round") -> np.ndarray:
    """Hard-edged (non-antialiased) brush footprint of ``diameter`` pixels."""
    d = max(1, int(diameter))
    if shape == "square":
        return np.ones((d, d), dtype=bool)
    c = (d - 1) / 2.0
    yy, xx = np.mgrid[0:d, 0:d]
    return (xx - c) ** 2 + (yy - c) ** 2 <= (d / 2.0) ** 2 + 1e-6


def clip_rect(r: Rect, w: int, h: int) -> Rect | None:
    x0, y0, x1, y1 = max(0, r[0]), max(0, r[1]), min(w, r[2]), min(h, r[3])
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def union_rect(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def dab_rect(cx: float, cy: float, diameter: int) -> Rect:
    d = max(1, int(diameter))
    x0 = int(np.floor(cx - (d - 1) / 2.0 + 0.5)) if d > 1 else int(np.floor(cx))
    y0 = int(np.floor(cy - (d - 1) / 2.0 + 0.5)) if d > 1 else int(np.floor(cy))
    return x0, y0, x0 + d, y0 + d


def dab(labels: np.ndarray, cx: float, cy: float, diameter: int, value: int, shape: str = "round",
        protect: np.ndarray | None = None, protect_src: np.ndarray | None = None) -> Rect | None:
    """Stamp one hard-edged dab; returns the clipped rectangle it may have changed.

    ``protect``: optional bool LUT over label values; pixels whose current value is protected keep it
    (preserve-labels mode). ``protect_src``: the layer the LUT reads (default ``labels`` itself; the
    instance layer is protected by the class under it).
    """
    h, w = labels.shape
    full = dab_rect(cx, cy, diameter)
    r = clip_rect(full, w, h)
    if r is None:
        return None
    m = brush_mask(int(diameter), shape)[r[1] - full[1]:r[3] - full[1], r[0] - full[0]:r[2] - full[0]]
    region = labels[r[1]:r[3], r[0]:r[2]]
    if protect is not None:
        src = region if protect_src is None else protect_src[r[1]:r[3], r[0]:r[2]]
        m = m & ~protect[src]
    region[m] = value
    return r


def segment_points(p0: tuple[float, float], p1: tuple[float, float], diameter: int):
    """Dab centres from ``p0`` (exclusive) to ``p1`` (inclusive), at most a quarter diameter apart."""
    dist = float(np.hypot(p1[0] - p0[0], p1[1] - p0[1]))
    n = max(1, int(np.ceil(dist / max(1.0, diameter / 4.0))))
    for i in range(1, n + 1):
        t = i / n
        yield p0[0] + (p1[0] - p0[0]) * t, p0[1] + (p1[1] - p0[1]) * t


def stroke_segment(labels: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], diameter: int,
                   value: int, shape: str = "round", protect: np.ndarray | None = None,
                   before=None) -> Rect | None:
    """Dabs from ``p0`` (exclusive) to ``p1`` (inclusive) spaced at most a quarter diameter apart.

    ``before(rect)`` is called before each dab modifies ``rect`` (undo tile capture).
    """
    changed = None
    for x, y in segment_points(p0, p1, diameter):
        if before is not None:
            h, w = labels.shape
            r = clip_rect(dab_rect(x, y, diameter), w, h)
            if r is not None:
                before(r)
        changed = union_rect(changed, dab(labels, x, y, diameter, value, shape, protect))
    return changed


def flood_region(labels: np.ndarray, x: int, y: int, contiguous: bool = True):
    """The 4-connected region of (x, y)'s class (contiguous) or every pixel of that class (global), as
    ``(rect, mask)`` — the bounding box and the region's mask inside it; ``None`` outside the canvas.
    The contiguous search is a scan-line seed fill (OpenCV floodFill): its cost follows the region."""
    h, w = labels.shape
    if not (0 <= x < w and 0 <= y < h):
        return None
    old = labels[y, x]
    if contiguous:
        if labels.dtype == np.uint8:
            mask = np.zeros((h + 2, w + 2), np.uint8)
            _n, _img, _m, (bx, by, bw, bh) = cv2.floodFill(labels, mask, (int(x), int(y)), 0, 0, 0,
                                                          4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
            sub = mask[1 + by:1 + by + bh, 1 + bx:1 + bx + bw].view(bool)
        else:
            same = (labels == old).astype(np.uint8)
            _n, comp, stats, _ = cv2.connectedComponentsWithStats(same, connectivity=4)
            k = comp[y, x]
            bx, by, bw, bh = (int(v) for v in stats[k, :4])
            sub = comp[by:by + bh, bx:bx + bw] == k
        return (int(bx), int(by), int(bx + bw), int(by + bh)), sub
    mask = labels == old
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return r, mask[r[1]:r[3], r[0]:r[2]]


def flood_fill(labels: np.ndarray, x: int, y: int, value: int, contiguous: bool = True):
    """Fill :func:`flood_region` with ``value``.

    Returns ``(rect, mask, old)``: the bounding box of changed pixels, the changed-pixel mask inside it
    and the previous value; ``None`` when nothing changed.
    """
    h, w = labels.shape
    if not (0 <= x < w and 0 <= y < h) or int(labels[y, x]) == value:
        return None
    old = int(labels[y, x])
    r, sub = flood_region(labels, x, y, contiguous)
    labels[r[1]:r[3], r[0]:r[2]][sub] = value
    return r, sub, old


class TileSnapshot:
    """Captures the pre-edit content of the tiles an edit touches, so undo keeps only the edit's
    bounding-box patch (never a copy of the whole layer)."""

    def __init__(self, labels: np.ndarray, tile: int = 64):
        self.labels, self.tile = labels, tile
        self.tiles: dict[tuple[int, int], np.ndarray] = {}
        self.rect: Rect | None = None

    def capture(self, r: Rect) -> None:
        t = self.tile
        for ty in range(r[1] // t, (r[3] - 1) // t + 1):
            for tx in range(r[0] // t, (r[2] - 1) // t + 1):
                if (tx, ty) not in self.tiles:
                    self.tiles[(tx, ty)] = self.labels[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t].copy()
        self.rect = union_rect(self.rect, r)

    def before_patch(self, r: Rect) -> np.ndarray:
        """Pre-edit content of ``r`` (tiles not captured were not changed)."""
        out = self.labels[r[1]:r[3], r[0]:r[2]].copy()
        t = self.tile
        for (tx, ty), data in self.tiles.items():
            x0, y0 = tx * t, ty * t
            ix0, iy0 = max(x0, r[0]), max(y0, r[1])
            ix1, iy1 = min(x0 + data.shape[1], r[2]), min(y0 + data.shape[0], r[3])
            if ix0 < ix1 and iy0 < iy1:
                out[iy0 - r[1]:iy1 - r[1], ix0 - r[0]:ix1 - r[0]] = data[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        return out


class LabelColorizer:
    """RGBA view of a label layer, updated through a colour LUT for dirty rectangles only."""

    def __init__(self, labels: np.ndarray, palette: np.ndarray, alpha: int = 255, lut: np.ndarray | None = None):
        self.labels = labels
        self.rgba = np.zeros(labels.shape + (4,), dtype=np.uint8)
        if lut is not None:                 # a full RGBA table (overlays: instances, edges)
            self.lut = np.ascontiguousarray(lut, np.uint8)
            self.update()
        else:
            self.set_palette(palette, alpha)

    def set_palette(self, palette: np.ndarray, alpha: int = 255) -> None:
        lut = np.zeros((65536 if self.labels.dtype == np.uint16 else 256, 4), np.uint8)
        lut[: len(palette), :3] = palette
        lut[:, 3] = alpha
        self.lut = lut
        self.update()

    def update_mask(self, r: Rect, mask: np.ndarray, value: int) -> None:
        """The pixels ``mask`` (inside ``r``) all became ``value``: one constant write, no look-up."""
        x0, y0, x1, y1 = r
        px = self.rgba.view(np.uint32)[..., 0]             # one 32-bit word per pixel
        np.copyto(px[y0:y1, x0:x1], self.lut[value].view(np.uint32)[0], where=mask)

    def update(self, r: Rect | None = None) -> None:
        if r is None:
            self.rgba[...] = self.lut[self.labels]
        else:
            x0, y0, x1, y1 = r
            self.rgba[y0:y1, x0:x1] = self.lut[self.labels[y0:y1, x0:x1]]


class InstanceOverlay(LabelColorizer):
    """RGBA view of the instance layer: each id tinted in its own colour, outlines opaque white."""

    def __init__(self, inst: np.ndarray, tint: int = 90):
        from .instances import instance_colours

        lut = np.zeros((65536, 4), np.uint8)
        lut[:, :3] = instance_colours()
        lut[1:, 3] = tint
        super().__init__(inst, None, lut=lut)

    def update(self, r: Rect | None = None) -> None:
        from .instances import outlines

        h, w = self.labels.shape
        if r is None:
            x0, y0, x1, y1 = 0, 0, w, h
        else:   # a changed pixel changes its neighbours' outlines too
            x0, y0, x1, y1 = max(0, r[0] - 1), max(0, r[1] - 1), min(w, r[2] + 1), min(h, r[3] + 1)
        # outlines are computed with one more pixel of context on every side
        cx0, cy0, cx1, cy1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
        region = self.labels[cy0:cy1, cx0:cx1]
        out = self.lut[region]
        out[outlines(region)] = (255, 255, 255, 255)
        self.rgba[y0:y1, x0:x1] = out[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]

    def update_mask(self, r: Rect, mask: np.ndarray, value: int) -> None:
        self.update(r)


def edge_lut(colour=(255, 255, 255)) -> np.ndarray:
    lut = np.zeros((256, 4), np.uint8)
    lut[1:, :3] = colour
    lut[1:, 3] = 255
    return lut


def mask_lut(colour=(255, 0, 255)) -> np.ndarray:
    lut = np.zeros((256, 4), np.uint8)
    lut[1, :3] = colour
    lut[1, 3] = 255
    return lut

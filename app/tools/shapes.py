"""Shape tools on label maps, with no Qt: line, polygon and lasso fills, and smart select (GrabCut).

Every function returns ``(rect, mask)``: the clipped bounding box ``(x0, y0, x1, y1)`` and the boolean
mask inside it, or ``None`` when nothing is covered. Edges are hard (8-connected rasterisation, no
anti-aliasing): label maps hold classes, not colours.
"""
from __future__ import annotations

import numpy as np

Rect = tuple[int, int, int, int]


def _bbox(mask: np.ndarray) -> Rect | None:
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _draw_local(w: int, h: int, xs, ys, pad: int, draw) -> tuple[Rect, np.ndarray] | None:
    """Rasterise into a canvas-clipped local buffer only as big as the shape (never the whole canvas)."""
    x0 = max(0, int(np.floor(min(xs))) - pad)
    y0 = max(0, int(np.floor(min(ys))) - pad)
    x1 = min(w, int(np.ceil(max(xs))) + pad + 1)
    y1 = min(h, int(np.ceil(max(ys))) + pad + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    buf = np.zeros((y1 - y0, x1 - x0), np.uint8)
    draw(buf, x0, y0)
    m = buf > 0
    r = _bbox(m)
    if r is None:
        return None
    return (x0 + r[0], y0 + r[1], x0 + r[2], y0 + r[3]), m[r[1]:r[3], r[0]:r[2]]


def polygon_mask(points, w: int, h: int) -> tuple[Rect, np.ndarray] | None:
    """The filled polygon (lasso or polygon tool) through ``points`` [(x, y), ...] in image pixels."""
    import cv2

    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return None

    def draw(buf, x0, y0):
        q = np.rint(pts - [x0, y0]).astype(np.int32)
        cv2.fillPoly(buf, [q], 1, lineType=cv2.LINE_8)
    return _draw_local(w, h, pts[:, 0], pts[:, 1], 1, draw)


def line_mask(p0, p1, width: int, w: int, h: int, shape: str = "round") -> tuple[Rect, np.ndarray] | None:
    """A straight stroke from ``p0`` to ``p1`` made of the brush's own dabs (same width and tip as a
    brush stroke, so a line and a steady hand give the same pixels)."""
    from ..model.painting import dab, stroke_segment

    width = max(1, int(width))

    def draw(buf, x0, y0):
        a = (p0[0] - x0, p0[1] - y0)
        dab(buf, a[0], a[1], width, 1, shape)
        stroke_segment(buf, a, (p1[0] - x0, p1[1] - y0), width, 1, shape)
    return _draw_local(w, h, [p0[0], p1[0]], [p0[1], p1[1]], width // 2 + 2, draw)


def smart_select(photo: np.ndarray, rect: Rect, fg: np.ndarray | None = None, bg: np.ndarray | None = None,
                 iterations: int = 4, work_side: int = 640) -> tuple[Rect, np.ndarray] | None:
    """GrabCut seeded by a rectangle (and optional full-size boolean stroke masks ``fg``/``bg`` marking
    sure foreground/background). Big photos are segmented at ``work_side`` pixels on the long side of
    the rectangle's neighbourhood and the mask scaled back (nearest)."""
    import cv2

    photo = np.ascontiguousarray(np.asarray(photo, np.uint8)[..., :3])
    h, w = photo.shape[:2]
    x0, y0, x1, y1 = max(0, rect[0]), max(0, rect[1]), min(w, rect[2]), min(h, rect[3])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    # a margin of background around the rectangle, then a crop so the cost follows the selection
    m = max(8, (x1 - x0 + y1 - y0) // 8)
    cx0, cy0, cx1, cy1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    crop = photo[cy0:cy1, cx0:cx1]
    s = min(1.0, work_side / max(crop.shape[:2]))
    small = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else crop
    sh, sw = small.shape[:2]
    mask = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    rx0, ry0 = int((x0 - cx0) * s), int((y0 - cy0) * s)
    rx1, ry1 = max(rx0 + 2, int((x1 - cx0) * s)), max(ry0 + 2, int((y1 - cy0) * s))
    mask[ry0:ry1, rx0:rx1] = cv2.GC_PR_FGD

    def seeds(strokes, value):
        if strokes is not None:
            sub = np.asarray(strokes, bool)[cy0:cy1, cx0:cx1].astype(np.uint8)
            if s < 1:
                sub = cv2.resize(sub, (sw, sh), interpolation=cv2.INTER_NEAREST)
            mask[sub > 0] = value
    seeds(bg, cv2.GC_BGD)
    seeds(fg, cv2.GC_FGD)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    sel = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if s < 1:
        sel = cv2.resize(sel.astype(np.uint8), (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_NEAREST) > 0
    full_rect = _bbox(sel)
    if full_rect is None:
        return None
    return ((cx0 + full_rect[0], cy0 + full_rect[1], cx0 + full_rect[2], cy0 + full_rect[3]),
            sel[full_rect[1]:full_rect[3], full_rect[0]:full_rect[2]])


def protect_lut(num_indices: int, mode: str | None, void: int, chosen: int | None = None) -> np.ndarray | None:
    """Preserve-labels mode as a LUT over label values (True = keep): ``"void"`` paints only over void,
    ``"class"`` only over ``chosen`` (and void); None paints everywhere."""
    if mode is None:
        return None
    lut = np.ones(max(256, num_indices), bool)
    lut[void] = False
    if mode == "class":
        if chosen is None:
            raise ValueError("preserve mode 'class' needs the class to paint over")
        lut[chosen] = False
    elif mode != "void":
        raise ValueError(f"unknown preserve mode '{mode}'")
    return lut

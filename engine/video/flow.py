"""Classical dense optical flow, warping and occlusion tests (OpenCV; no learned flow).

Conventions: ``flow(a, b)`` is the *backward-warping* flow from frame ``a`` to frame ``b``: for every pixel x
of ``a``, ``a[x] ~ b[x + flow[x]]``, an (H, W, 2) float32 array of (dx, dy). So ``warp(b, flow(a, b))``
brings ``b`` onto ``a``'s pixel grid. To carry the previous output onto frame t, use ``flow(t, t-1)``.

Occlusions follow the forward-backward test of Sundaram et al. (as Lai et al. and Ruder et al. use it):
x is occluded when ``|f(x) + g(x + f(x))|^2 > a1 (|f|^2 + |g(x + f)|^2) + a2``, with f = flow(a, b),
g = flow(b, a), plus every x whose match falls outside the frame.
"""
from __future__ import annotations

import numpy as np

METHODS = ("dis", "farneback")
FB_ALPHA1 = 0.01
FB_ALPHA2 = 0.5


def to_gray(img: np.ndarray) -> np.ndarray:
    """uint8 grey of an (H, W, 3) RGB or (H, W) image."""
    import cv2

    a = np.asarray(img)
    if a.ndim == 3:
        a = cv2.cvtColor(np.ascontiguousarray(a[..., :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(a.astype(np.uint8))


_DIS = {}


def dense_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flow from frame ``a`` to frame ``b`` (see the module's convention), (H, W, 2) float32.
    ``method``: ``dis`` (OpenCV DIS, medium preset: fast) or ``farneback``."""
    import cv2

    ga, gb = to_gray(a), to_gray(b)
    if ga.shape != gb.shape:
        raise ValueError(f"frames of different sizes: {ga.shape[::-1]} and {gb.shape[::-1]}")
    if method == "dis":
        dis = _DIS.get("medium")
        if dis is None:
            dis = _DIS["medium"] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(ga, gb, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=4, winsize=15, iterations=3,
                                            poly_n=5, poly_sigma=1.2, flags=0)
    raise ValueError(f"unknown flow method '{method}' (known: {', '.join(METHODS)})")


def _maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx + flow[..., 0], gy + flow[..., 1]


def warp(img: np.ndarray, flow: np.ndarray, nearest: bool = False) -> np.ndarray:
    """``img`` sampled at x + flow(x) (backward warping), bilinear or nearest (label maps). Samples outside
    the frame take the nearest border value; :func:`outside` tells which they are."""
    import cv2

    mx, my = _maps(flow)
    a = np.asarray(img)
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if a.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        if not nearest:
            raise ValueError(f"cannot interpolate a {a.dtype} image")
        return a[np.clip(np.rint(my), 0, a.shape[0] - 1).astype(np.intp),
                 np.clip(np.rint(mx), 0, a.shape[1] - 1).astype(np.intp)]
    return cv2.remap(a, mx, my, interp, borderMode=cv2.BORDER_REPLICATE)


def outside(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: where x + flow(x) leaves the frame."""
    h, w = flow.shape[:2]
    mx, my = _maps(flow)
    return (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)


def occlusion_mask(fwd: np.ndarray, bwd: np.ndarray, alpha1: float = FB_ALPHA1,
                   alpha2: float = FB_ALPHA2) -> np.ndarray:
    """(H, W) bool, True where a pixel of frame a has no reliable match in frame b: the forward-backward
    test on ``fwd`` = flow(a, b) and ``bwd`` = flow(b, a), or a match outside the frame."""
    bw = warp(bwd.astype(np.float32), fwd)
    s = fwd + bw
    lhs = (s ** 2).sum(-1)
    rhs = alpha1 * ((fwd ** 2).sum(-1) + (bw ** 2).sum(-1)) + alpha2
    return (lhs > rhs) | outside(fwd)


def flow_pair(a: np.ndarray, b: np.ndarray, method: str = "dis") -> tuple[np.ndarray, np.ndarray]:
    """(flow(a, b), valid mask on a's grid): what carrying ``b``'s content onto ``a`` needs."""
    f = dense_flow(a, b, method)
    g = dense_flow(b, a, method)
    return f, ~occlusion_mask(f, g)


def warping_error(out_t: np.ndarray, out_prev: np.ndarray, flow_t_prev: np.ndarray, valid: np.ndarray) -> float:
    """Lai et al.'s warping error of one frame pair: the mean over non-occluded pixels of the squared RGB
    difference (values in [0, 1]) between output t and output t-1 warped onto t by the *real* frames' flow."""
    a = np.asarray(out_t, dtype=np.float32) / 255.0
    b = warp(np.asarray(out_prev, dtype=np.float32) / 255.0, flow_t_prev)
    m = valid.astype(np.float32)
    n = float(m.sum())
    if n == 0:
        return 0.0
    return float((((a - b) ** 2).sum(-1) * m).sum() / n)

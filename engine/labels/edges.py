"""Edge maps for S-Flow GAN: the thresholded spatial Laplacian of a frame, and label boundaries.

S-Flow feeds its generator the semantic one-hot map plus an edge map "obtained by a spatial Laplacian
operator with threshold" of the real (or CG) frame. Ours, with the defaults in brackets:

1. grey = ITU-R 601 luma of the RGB frame, in 0..255;
2. a Gaussian blur of sigma ``sigma`` [1.0] px (the Laplacian of raw pixels is mostly sensor noise);
3. the Laplacian with OpenCV's aperture ``ksize`` [3] (``cv2.Laplacian``: 1 is the 4-neighbour kernel
   [[0, 1, 0], [1, -4, 1], [0, 1, 0]]; 3 is [[2, 0, 2], [0, -8, 0], [2, 0, 2]]; 5 and 7 are wider);
4. edge = |Laplacian| >= ``threshold`` [24, in grey levels of that kernel's response], as 0/1 float32.

The defaults give outlines of cars, people, lane marks, windows and foliage on CamVid frames at
256x192, with 12% (train) to 24% (val) of the pixels on.
Without a frame, :func:`label_edges` gives the label map's own boundaries: the generator is trained with
both, so it works from label maps alone.
"""
from __future__ import annotations

import numpy as np

SIGMA = 1.0
KSIZE = 3
THRESHOLD = 24.0


def laplacian_edges(rgb: np.ndarray, threshold: float = THRESHOLD, ksize: int = KSIZE,
                    sigma: float = SIGMA) -> np.ndarray:
    """(H, W) float32 in {0, 1}: the thresholded Laplacian of an (H, W, 3) uint8 RGB (or grey) frame."""
    import cv2

    a = np.asarray(rgb)
    if a.ndim == 3:
        a = cv2.cvtColor(np.ascontiguousarray(a[..., :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    if ksize not in (1, 3, 5, 7):
        raise ValueError(f"Laplacian kernel size must be 1, 3, 5 or 7, not {ksize}")
    g = a.astype(np.float32)
    if sigma > 0:
        g = cv2.GaussianBlur(g, (0, 0), sigma)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=ksize)
    return (np.abs(lap) >= threshold).astype(np.float32)


def label_edges(labels: np.ndarray) -> np.ndarray:
    """(H, W) float32 in {0, 1}: pixels whose 4-neighbourhood holds another label."""
    lab = np.asarray(labels)
    e = np.zeros(lab.shape, bool)
    e[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    e[:, :-1] |= lab[:, 1:] != lab[:, :-1]
    e[1:, :] |= lab[1:, :] != lab[:-1, :]
    e[:-1, :] |= lab[1:, :] != lab[:-1, :]
    return e.astype(np.float32)


def edges_for(labels: np.ndarray, frame: np.ndarray | None, size_wh: tuple[int, int] | None = None,
              threshold: float = THRESHOLD, ksize: int = KSIZE, sigma: float = SIGMA) -> np.ndarray:
    """The S-Flow edge input at ``size_wh`` (default: the label map's size): the frame's Laplacian edges
    when there is a frame, else the label boundaries."""
    import cv2

    from .maps import resize_nearest

    lab = np.asarray(labels)
    w, h = size_wh or (lab.shape[1], lab.shape[0])
    if frame is None:
        return label_edges(resize_nearest(lab, (w, h)))
    f = np.asarray(frame)
    if f.shape[1::-1] != (w, h):
        f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA if f.shape[1] > w else cv2.INTER_LINEAR)
    return laplacian_edges(f, threshold, ksize, sigma)

"""Inference-time temporal stabilisation for any generator (SPADE, pix2pixHD, GroupDNet, S-Flow).

Each new output is blended with the previous *stabilised* output carried onto the new frame by the
input frames' flow, only where that flow is trustworthy (forward-backward test, inside the frame):

    result_t = (1 - s * m) * out_t + s * m * warp(result_{t-1}, flow(frame_t, frame_{t-1}))

``s`` is the strength (0 = off, per-frame generation; 1 = frozen along the motion) and ``m`` the
non-occlusion mask, feathered over a few pixels so no seam shows where it switches. Because the previous
*result* is used, the blend is a recursive filter along motion trajectories: flicker falls with every
frame while new content (disocclusions, scene changes) comes straight from the generator.

The flow comes from the input frames: the RGB/CG frames when the sequence has them, else the
colour-coded label maps (flat regions carry no texture, so the flow there is whatever DIS smooths in;
the occlusion test still fences off label boundaries that move inconsistently).
"""
from __future__ import annotations

import numpy as np

from .flow import dense_flow, occlusion_mask, warp

DEFAULT_STRENGTH = 0.6
FEATHER = 5                      # px: Gaussian feather of the validity mask


class Stabilizer:
    """Feed frames in order: ``result = stab.step(output, frame)``. ``frame`` is what the flow is computed
    on (RGB frame or colourised labels) and must keep one size; ``reset()`` starts a new shot."""

    def __init__(self, strength: float = DEFAULT_STRENGTH, method: str = "dis"):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"stabilisation strength must be within 0..1, not {strength}")
        self.strength = float(strength)
        self.method = method
        self.reset()

    def reset(self) -> None:
        self.prev_frame = None
        self.prev_result = None
        self.last_valid_fraction = None

    def step(self, output: np.ndarray, frame: np.ndarray) -> np.ndarray:
        import cv2

        out = np.asarray(output)
        if self.strength == 0.0 or self.prev_result is None or self.prev_result.shape != out.shape:
            self.prev_frame, self.prev_result = np.asarray(frame), out
            return out
        if np.asarray(frame).shape[:2] != self.prev_frame.shape[:2]:
            raise ValueError(f"frame size changed mid-sequence: {self.prev_frame.shape[1::-1]} -> "
                             f"{np.asarray(frame).shape[1::-1]}")
        f = dense_flow(frame, self.prev_frame, self.method)           # t -> t-1
        g = dense_flow(self.prev_frame, frame, self.method)
        valid = ~occlusion_mask(f, g)
        self.last_valid_fraction = float(valid.mean())
        m = valid.astype(np.float32)
        if FEATHER > 0:
            m = np.minimum(m, cv2.GaussianBlur(m, (0, 0), FEATHER / 2.0))   # feather inwards only
        carried = warp(self.prev_result.astype(np.float32), f)
        a = (self.strength * m)[..., None]
        res = (1.0 - a) * out.astype(np.float32) + a * carried
        res = np.clip(np.rint(res), 0, 255).astype(np.uint8)
        self.prev_frame, self.prev_result = np.asarray(frame), res
        return res

"""Colour and texture figures reported beside the segmentation protocol (:mod:`.protocol`): how well
each class's colour matches the real photos, how close the images are, and whether the output has
texture.

- ``class_delta_e``: per class, the CIE76 distance (Lab) between the mean colour of its generated
  pixels and of its real pixels, over the split; reported per class and pixel-weighted overall.
- ``psnr``: PSNR against the real photo (a weak measure for GANs; reported for completeness).
- ``texture_ratio``: mean gradient magnitude of the output / of the real photos (1.0 = as detailed as
  real photos; the flat baseline is near 0).
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def _lab(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _grad(img: np.ndarray) -> float:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    return float(np.mean(np.hypot(gx, gy)))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


class _Acc:
    def __init__(self, n: int):
        self.gen_sum = np.zeros((n, 3))
        self.real_sum = np.zeros((n, 3))
        self.count = np.zeros(n)
        self.psnr: list[float] = []
        self.grad: list[float] = []

    def add(self, gen: np.ndarray, real: np.ndarray, labels: np.ndarray) -> None:
        lg, lr = _lab(gen), _lab(real)
        n = len(self.count)
        flat = labels.reshape(-1)
        for c in range(3):
            self.gen_sum[:, c] += np.bincount(flat, lg[..., c].reshape(-1), n)
            self.real_sum[:, c] += np.bincount(flat, lr[..., c].reshape(-1), n)
        self.count += np.bincount(flat, minlength=n)
        self.psnr.append(_psnr(gen, real))
        self.grad.append(_grad(gen))

    def summary(self, names: list[str], real_grad: float, skip: set[int]) -> dict:
        per = {}
        tot, w = 0.0, 0.0
        for i, name in enumerate(names):
            if self.count[i] == 0 or i in skip:
                continue
            de = float(np.linalg.norm(self.gen_sum[i] / self.count[i] - self.real_sum[i] / self.count[i]))
            per[name] = round(de, 2)
            tot += de * self.count[i]
            w += self.count[i]
        return {"class_delta_e": round(tot / max(w, 1), 3), "class_delta_e_per_class": per,
                "psnr": round(float(np.mean(self.psnr)), 3),
                "texture_ratio": round(float(np.mean(self.grad)) / max(real_grad, 1e-9), 3)}

"""Segmentation scores: a confusion matrix accumulated over a split, pixel accuracy and mIoU.

Pixels labelled with the label set's void index are ignored. mIoU averages over the classes that
occur in the ground truth or in the predictions of the split (a class absent from both is skipped,
as in the Cityscapes scripts).
"""
from __future__ import annotations

import numpy as np


class Confusion:
    def __init__(self, num_classes: int, ignore: int | None = None):
        self.n = num_classes
        self.ignore = ignore
        self.m = np.zeros((num_classes, num_classes), dtype=np.int64)   # rows: truth, columns: prediction

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        pred, truth = np.asarray(pred).reshape(-1), np.asarray(truth).reshape(-1)
        if pred.shape != truth.shape:
            raise ValueError(f"prediction has {pred.size} pixels, labels {truth.size}")
        keep = (truth >= 0) & (truth < self.n)
        if self.ignore is not None:
            keep &= truth != self.ignore
        t, p = truth[keep].astype(np.int64), np.clip(pred[keep].astype(np.int64), 0, self.n - 1)
        self.m += np.bincount(t * self.n + p, minlength=self.n * self.n).reshape(self.n, self.n)

    def iou(self) -> np.ndarray:
        tp = np.diag(self.m).astype(np.float64)
        denom = self.m.sum(0) + self.m.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0

    def pixel_accuracy(self) -> float:
        total = self.m.sum()
        return float(np.trace(self.m) / total) if total else 0.0

    def summary(self, names: list[str]) -> dict:
        iou = self.iou()
        return {"pixel_accuracy": round(self.pixel_accuracy(), 4), "miou": round(self.miou(), 4),
                "iou": {names[i]: (None if np.isnan(v) else round(float(v), 4)) for i, v in enumerate(iou)}}

"""Paired label/photo datasets for training.

Layouts understood:
- CamVid (SegNet tutorial): ``train/`` + ``trainannot/`` (and ``val/`` + ``valannot/``);
- generic paired folders: ``images/`` + ``labels/`` (+ optional ``instances/``), or
  ``<split>/images`` + ``<split>/labels``.

Bad samples (unreadable files, size mismatch, ids outside the label set) are reported with the file
name and either skipped (``on_bad='skip'``) or stop loading with a clear message (``on_bad='stop'``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..labels.labelsets import LabelSet, decode_raw

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DatasetError(ValueError):
    pass


@dataclass
class Sample:
    name: str
    image: np.ndarray          # (H, W, 3) uint8 RGB
    labels: np.ndarray         # (H, W) int32 label-set indices
    instances: np.ndarray | None = None


def find_pairs(root: Path, split: str = "train") -> list[tuple[Path, Path, Path | None]]:
    root = Path(root)
    cands = [
        (root / split, root / f"{split}annot", None),                       # CamVid
        (root / split / "images", root / split / "labels", root / split / "instances"),
        (root / "images", root / "labels", root / "instances"),
    ]
    for img_dir, lab_dir, inst_dir in cands:
        if img_dir.is_dir() and lab_dir.is_dir():
            labs = {p.stem: p for p in lab_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
            pairs = []
            for p in sorted(img_dir.iterdir()):
                if p.suffix.lower() not in IMAGE_EXTS:
                    continue
                lab = labs.get(p.stem)
                if lab is None:
                    continue
                inst = None
                if inst_dir is not None and inst_dir.is_dir():
                    for ext in (".png", ".tif"):
                        if (inst_dir / (p.stem + ext)).exists():
                            inst = inst_dir / (p.stem + ext)
                pairs.append((p, lab, inst))
            if not pairs:
                raise DatasetError(f"{img_dir} and {lab_dir} have no files with matching names")
            return pairs
    raise DatasetError(f"{root}: no '{split}/'+'{split}annot/' (CamVid) or 'images/'+'labels/' folders found")


def load_sample(img_p: Path, lab_p: Path, inst_p: Path | None, ls: LabelSet) -> Sample:
    try:
        image = np.array(Image.open(img_p).convert("RGB"))
    except Exception as e:  # noqa: BLE001 - report any decoder failure with the file name
        raise DatasetError(f"{img_p.name}: unreadable image ({e})") from None
    try:
        raw = np.array(Image.open(lab_p))
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{lab_p.name}: unreadable label map ({e})") from None
    if raw.ndim != 2:
        raise DatasetError(f"{lab_p.name}: label map must be single-channel (indexed or grey), got shape {raw.shape}")
    if raw.shape != image.shape[:2]:
        raise DatasetError(f"{lab_p.name}: label size {raw.shape[::-1]} differs from image size {image.shape[1::-1]}")
    labels = decode_raw(raw, ls)
    bad = np.unique(labels[(labels < 0) | (labels >= ls.num_indices)])
    if bad.size:
        raise DatasetError(f"{lab_p.name}: ids {bad[:10].tolist()} are not in label set {ls.name}")
    inst = None
    if inst_p is not None:
        try:
            inst = np.array(Image.open(inst_p)).astype(np.int32)
        except Exception as e:  # noqa: BLE001
            raise DatasetError(f"{inst_p.name}: unreadable instance map ({e})") from None
        if inst.shape != labels.shape:
            raise DatasetError(f"{inst_p.name}: instance map size differs from the label map")
    return Sample(img_p.stem, image, labels.astype(np.int32), inst)


class PairedDataset:
    """All samples of a split, loaded into memory once (CamVid train: ~190 MB)."""

    def __init__(self, root: Path | str, ls: LabelSet, split: str = "train", on_bad: str = "skip",
                 log=None, limit: int | None = None):
        self.ls = ls
        self.samples: list[Sample] = []
        self.skipped: list[str] = []
        log = log or (lambda m: print(m, file=sys.stderr))
        pairs = find_pairs(Path(root), split)
        if limit:
            pairs = pairs[:limit]
        for img_p, lab_p, inst_p in pairs:
            try:
                self.samples.append(load_sample(img_p, lab_p, inst_p, ls))
            except DatasetError as e:
                if on_bad == "stop":
                    raise
                self.skipped.append(str(e))
                log(f"skipped bad sample: {e}")
        if not self.samples:
            raise DatasetError(f"{root}: no usable samples in split '{split}'")

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, i: int, size_wh: tuple[int, int], rng: np.random.Generator | None = None,
            scale_range: tuple[float, float] = (1.0, 1.0), flip: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``i`` resized/cropped to ``size_wh``: (image uint8 HxWx3, labels int HxW).

        Augmentation (when ``rng`` is given): resize so the target fits times a random scale, random
        crop, random horizontal flip. Labels always use nearest-neighbour.
        """
        s = self.samples[i]
        w, h = size_wh
        H, W = s.labels.shape
        scale = 1.0 if rng is None else float(rng.uniform(*scale_range))
        base = max(w / W, h / H) * scale
        rw, rh = max(w, int(round(W * base))), max(h, int(round(H * base)))
        img = cv2.resize(s.image, (rw, rh), interpolation=cv2.INTER_AREA if base < 1 else cv2.INTER_LINEAR)
        lab = cv2.resize(s.labels.astype(np.uint16), (rw, rh), interpolation=cv2.INTER_NEAREST).astype(np.int64)
        if rng is None:
            x0, y0 = (rw - w) // 2, (rh - h) // 2
        else:
            x0, y0 = int(rng.integers(0, rw - w + 1)), int(rng.integers(0, rh - h + 1))
        img, lab = img[y0:y0 + h, x0:x0 + w], lab[y0:y0 + h, x0:x0 + w]
        if rng is not None and flip and rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        return np.ascontiguousarray(img), np.ascontiguousarray(lab)

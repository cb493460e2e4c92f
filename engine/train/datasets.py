"""Paired label/photo datasets for training.

Layouts understood:
- CamVid (SegNet tutorial): ``train/`` + ``trainannot/`` (and ``val/`` + ``valannot/``);
- generic paired folders: ``images/`` + ``labels/`` (+ optional ``instances/``), or
  ``<split>/images`` + ``<split>/labels``.

Samples without an instance map get pseudo-instances (connected components of the label set's thing
classes, Cityscapes ids ``class * 1000 + k``), so instance boundaries and per-instance features work on
every dataset.

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
from ..labels.maps import pseudo_instances

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DatasetError(ValueError):
    pass


@dataclass
class Sample:
    name: str
    image: np.ndarray          # (H, W, 3) uint8 RGB
    labels: np.ndarray         # (H, W) int32 label-set indices
    instances: np.ndarray | None = None
    pseudo: bool = False       # instances derived from the labels (no instance map on disk)


# layout -> the label set its files use
LAYOUT_LABELSETS = {"camvid": "camvid_11", "cityscapes": "cityscapes_35", "ade20k": "ade20k_150",
                    "coco": "coco_stuff_182"}
ADE_SPLITS = {"train": "training", "val": "validation"}


def detect_layout(root: Path | str) -> str:
    """Which dataset layout ``root`` holds:

    - ``camvid``: ``train/`` + ``trainannot/`` (SegNet tutorial copy);
    - ``cityscapes``: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` + ``gtFine/<split>/<city>/*_gtFine_labelIds.png``
      (+ ``*_gtFine_instanceIds.png``);
    - ``ade20k``: ``images/training/*.jpg`` + ``annotations/training/*.png`` (ADEChallengeData2016);
    - ``coco``: ``<split>_img/`` + ``<split>_label/`` (+ ``<split>_inst/``), the SPADE/pix2pixHD layout;
    - ``paired``: ``images/`` + ``labels/`` (+ ``instances/``), at the top or under ``<split>/``.
    """
    root = Path(root)
    if (root / "train").is_dir() and (root / "trainannot").is_dir():
        return "camvid"
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        return "cityscapes"
    if (root / "images" / "training").is_dir() and (root / "annotations" / "training").is_dir():
        return "ade20k"
    if any((root / f"{sp}_label").is_dir() for sp in ("train", "val", "test")):
        return "coco"
    return "paired"


def _by_stem(folder: Path, strip: str = "") -> dict[str, Path]:
    out = {}
    for p in folder.rglob("*") if folder.is_dir() else []:
        if p.suffix.lower() in IMAGE_EXTS:
            stem = p.stem[: -len(strip)] if strip and p.stem.endswith(strip) else p.stem
            out[stem] = p
    return out


def _match(images: dict[str, Path], labels: dict[str, Path], insts: dict[str, Path], what: str):
    pairs = [(images[k], labels[k], insts.get(k)) for k in sorted(images) if k in labels]
    if not pairs:
        raise DatasetError(f"{what}: no photos and label maps with matching names")
    return pairs


def find_pairs(root: Path, split: str = "train") -> list[tuple[Path, Path, Path | None]]:
    """(photo, label map, instance map or None) for every sample of ``split``, in any known layout."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == "cityscapes":
        img_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
        if not img_dir.is_dir() or not gt_dir.is_dir():
            raise DatasetError(f"{root}: Cityscapes layout without leftImg8bit/{split} and gtFine/{split}")
        return _match(_by_stem(img_dir, "_leftImg8bit"),
                      {k: v for k, v in _by_stem(gt_dir, "_gtFine_labelIds").items() if v.stem.endswith("labelIds")},
                      {k: v for k, v in _by_stem(gt_dir, "_gtFine_instanceIds").items()
                       if v.stem.endswith("instanceIds")}, f"{root} (Cityscapes {split})")
    if layout == "ade20k":
        sp = ADE_SPLITS.get(split, split)
        return _match(_by_stem(root / "images" / sp), _by_stem(root / "annotations" / sp), {},
                      f"{root} (ADE20K {sp})")
    if layout == "coco":
        if not (root / f"{split}_label").is_dir():
            raise DatasetError(f"{root}: no {split}_label/ folder")
        if not (root / f"{split}_img").is_dir():
            raise DatasetError(f"{root}: {split}_label/ has no {split}_img/ photos beside it")
        return _match(_by_stem(root / f"{split}_img"), _by_stem(root / f"{split}_label"),
                      _by_stem(root / f"{split}_inst"), f"{root} ({split})")
    cands = [
        (root / split, root / f"{split}annot", None),                       # CamVid
        (root / split / "images", root / split / "labels", root / split / "instances"),
        (root / "images", root / "labels", root / "instances"),
    ]
    for img_dir, lab_dir, inst_dir in cands:
        if img_dir.is_dir() and lab_dir.is_dir():
            return _match(_by_stem(img_dir), _by_stem(lab_dir), _by_stem(inst_dir) if inst_dir else {},
                          f"{img_dir} and {lab_dir}")
    raise DatasetError(f"{root}: no known dataset layout for split '{split}' (CamVid {split}/ + {split}annot/, "
                       f"Cityscapes leftImg8bit/ + gtFine/, ADE20K images/ + annotations/, {split}_img/ + "
                       f"{split}_label/, or images/ + labels/)")


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
    labels = labels.astype(np.int32)
    if inst is None:
        return Sample(img_p.stem, image, labels, pseudo_instances(labels, ls.thing_indices()), pseudo=True)
    return Sample(img_p.stem, image, labels, inst)


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
        return self.get_with_instances(i, size_wh, rng, scale_range, flip)[:2]

    def get_with_instances(self, i: int, size_wh: tuple[int, int], rng: np.random.Generator | None = None,
                           scale_range: tuple[float, float] = (1.0, 1.0), flip: bool = True):
        """As :meth:`get`, plus the instance map (int64 HxW) under the same resize, crop and flip."""
        s = self.samples[i]
        w, h = size_wh
        H, W = s.labels.shape
        scale = 1.0 if rng is None else float(rng.uniform(*scale_range))
        base = max(w / W, h / H) * scale
        rw, rh = max(w, int(round(W * base))), max(h, int(round(H * base)))
        img = cv2.resize(s.image, (rw, rh), interpolation=cv2.INTER_AREA if base < 1 else cv2.INTER_LINEAR)
        lab = cv2.resize(s.labels.astype(np.uint16), (rw, rh), interpolation=cv2.INTER_NEAREST).astype(np.int64)
        inst = cv2.resize(s.instances.astype(np.int32), (rw, rh), interpolation=cv2.INTER_NEAREST).astype(np.int64)
        if rng is None:
            x0, y0 = (rw - w) // 2, (rh - h) // 2
        else:
            x0, y0 = int(rng.integers(0, rw - w + 1)), int(rng.integers(0, rh - h + 1))
        img, lab, inst = (a[y0:y0 + h, x0:x0 + w] for a in (img, lab, inst))
        if rng is not None and flip and rng.random() < 0.5:
            img, lab, inst = img[:, ::-1], lab[:, ::-1], inst[:, ::-1]
        return np.ascontiguousarray(img), np.ascontiguousarray(lab), np.ascontiguousarray(inst)

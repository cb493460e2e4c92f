"""The papers' evaluation protocol, offline.

For a generator and a labelled split: generate an image from every label map, segment it with a
segmenter trained on real photos, and score the segmentation against the label map (pixel accuracy,
mIoU). The same segmenter on the real photos is the *oracle*; the ratio of the two mIoUs says how
much of the scene a generator renders recognisably. Also:

- **FD-VGG**: the Fréchet distance between Gaussians fitted to VGG19 pool5 descriptors (spatial mean)
  of the generated and the real images. It is *not* FID (no Inception weights exist offline) and its
  values are not comparable with published FIDs. ``fd_vgg_floor`` is the same distance between the
  real photos of the split and those of the training split: what a perfect generator would score
  with this many images.
- **LPIPS diversity** (multimodal models only): mean pairwise LPIPS (AlexNet, v0.1) between outputs
  of the same label map under different seeds.
- **Class colour error**: CIE76 Delta E between each class's mean generated and real colour.

Everything is computed at each model's own resolution.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..train.datasets import PairedDataset
from .metrics import _Acc, _grad
from .segmentation import Confusion


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2), via symmetric eigendecompositions."""
    w, v = np.linalg.eigh(cov1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(inner, 0, None))))
    d = mu1 - mu2
    return float(d @ d + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def gaussian(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    return feats.mean(0), np.cov(feats, rowvar=False)


@dataclass
class _RealStats:
    """What depends only on the split and the size: the oracle and the real descriptors."""
    oracle: Confusion
    feats: np.ndarray
    grad: float
    floor: float | None


@dataclass
class Evaluator:
    data_root: str
    split: str = "val"
    segmenter: object = None          # a StreetSegmenter (None: the bundled one)
    limit: int | None = None
    seeds: int = 3                    # seeds per label map for LPIPS diversity
    diversity_images: int = 10
    fd_floor: bool = True
    floor_split: str = "train"
    progress: object = None           # progress(stage: str, i: int, n: int)
    _real: dict = field(default_factory=dict)

    def __post_init__(self):
        import torch

        from ..models.segmenter import load_segmenter
        from ..models.vgg import VGG19Features

        self.torch = torch
        self.seg = self.segmenter if self.segmenter is not None else load_segmenter()
        self.vgg = VGG19Features("relu5_1")
        self._lpips = None
        self._data: PairedDataset | None = None

    # ---- helpers ----------------------------------------------------------------------------
    def data(self, ls) -> PairedDataset:
        if self._data is None:
            self._data = PairedDataset(self.data_root, ls, self.split, limit=self.limit, log=lambda m: None)
        return self._data

    def _tensor(self, img: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(127.5).sub(1)

    def segment(self, img: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.seg(self._tensor(img)).argmax(1)[0].numpy()

    def descriptor(self, img: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.vgg.pool5(self._tensor(img))[0].double().numpy()

    def _tick(self, stage, i, n):
        if self.progress:
            self.progress(stage, i, n)

    def real_stats(self, ls, size) -> _RealStats:
        key = tuple(size)
        if key not in self._real:
            val = self.data(ls)
            conf = Confusion(self.seg.cfg.num_classes, ls.void_index)
            feats, grads = [], []
            for i in range(len(val)):
                img, lab = val.get(i, key)
                conf.add(self.segment(img), lab)
                feats.append(self.descriptor(img))
                grads.append(_grad(img))
                self._tick(f"real photos {key[0]}x{key[1]}", i + 1, len(val))
            floor = None
            if self.fd_floor:
                try:
                    ref = PairedDataset(self.data_root, ls, self.floor_split, log=lambda m: None)
                except ValueError:
                    ref = None
                if ref is not None:
                    rf = []
                    for i in range(len(ref)):
                        rf.append(self.descriptor(ref.get(i, key)[0]))
                        self._tick(f"{self.floor_split} photos (FD floor)", i + 1, len(ref))
                    floor = frechet_distance(*gaussian(np.stack(feats)), *gaussian(np.stack(rf)))
            self._real[key] = _RealStats(conf, np.stack(feats), float(np.mean(grads)), floor)
        return self._real[key]

    def diversity(self, model, val, size) -> float:
        from ..models.lpips import LPIPS
        from ..registry import generate

        if self._lpips is None:
            self._lpips = LPIPS("alex")
        n = min(self.diversity_images, len(val))
        dists = []
        for i in range(n):
            lab = val.get(i, size)[1]
            outs = [self._tensor(generate(model, lab, seed=1000 * i + s, size_wh=size)) for s in range(self.seeds)]
            with self.torch.no_grad():
                for a in range(len(outs)):
                    for b in range(a + 1, len(outs)):
                        dists.append(float(self._lpips(outs[a], outs[b])))
            self._tick("diversity", i + 1, n)
        return float(np.mean(dists)) if dists else 0.0

    # ---- one model --------------------------------------------------------------------------
    def evaluate(self, model) -> dict:
        from ..registry import generate

        ls = model.labelset
        if ls.name != self.seg_labelset:
            raise ValueError(f"{model.name} uses label set {ls.name}; the segmenter scores {self.seg_labelset} "
                             "only (train a segmenter on that label set first)")
        size = tuple(model.resolution)
        real = self.real_stats(ls, size)
        val = self.data(ls)
        conf = Confusion(self.seg.cfg.num_classes, ls.void_index)
        colour = _Acc(ls.num_indices)
        feats = []
        t0 = time.perf_counter()
        for i in range(len(val)):
            img, lab = val.get(i, size)
            gen = generate(model, lab, seed=i, size_wh=size)
            conf.add(self.segment(gen), lab)
            feats.append(self.descriptor(gen))
            colour.add(gen, img, lab)
            self._tick(model.name, i + 1, len(val))
        names = ls.names()[: self.seg.cfg.num_classes]
        g, o = conf.summary(names), real.oracle.summary(names)
        fd = frechet_distance(*gaussian(np.stack(feats)), *gaussian(real.feats))
        skip = {ls.void_index} if ls.void_index is not None else set()
        col = colour.summary(ls.names(), real.grad, skip)
        multimodal = bool(model.card.get("capabilities", {}).get("multimodal"))
        row = {"model": model.name, "family": model.family, "size": list(size), "images": len(val),
               "pixel_accuracy": g["pixel_accuracy"], "miou": g["miou"],
               "oracle_pixel_accuracy": o["pixel_accuracy"], "oracle_miou": o["miou"],
               "miou_ratio": round(g["miou"] / o["miou"], 4) if o["miou"] > 0 else None,
               "fd_vgg": round(fd, 3), "fd_vgg_floor": None if real.floor is None else round(real.floor, 3),
               "lpips_diversity": round(self.diversity(model, val, size), 4) if multimodal else None,
               "class_delta_e": col["class_delta_e"], "texture_ratio": col["texture_ratio"],
               "iou": g["iou"], "oracle_iou": o["iou"], "seconds": round(time.perf_counter() - t0, 1)}
        return row

    @property
    def seg_labelset(self) -> str:
        return self.seg.labelset


def markdown(res: dict) -> str:
    """The result table as Markdown."""
    head = ("| model | size | pixel acc. | mIoU | oracle pixel acc. | oracle mIoU | mIoU / oracle | FD-VGG "
            "(floor) | LPIPS diversity |")
    lines = [f"Evaluation on {res['data']} `{res['split']}` ({res['images']} images; segmenter "
             f"{res['segmenter']}).", "", head, "|" + "---|" * 9]
    for r in res["rows"]:
        floor = f" ({r['fd_vgg_floor']:.1f})" if r.get("fd_vgg_floor") is not None else ""
        div = "n/a" if r["lpips_diversity"] is None else f"{r['lpips_diversity']:.3f}"
        ratio = "n/a" if r["miou_ratio"] is None else f"{100 * r['miou_ratio']:.1f}%"
        lines.append(f"| {r['model']} | {r['size'][0]}x{r['size'][1]} | {r['pixel_accuracy']:.3f} | {r['miou']:.3f} "
                     f"| {r['oracle_pixel_accuracy']:.3f} | {r['oracle_miou']:.3f} | {ratio} | "
                     f"{r['fd_vgg']:.1f}{floor} | {div} |")
    lines += ["", "FD-VGG: Fréchet distance on VGG19 pool5 descriptors (not FID; lower is better). The floor is "
              "the same distance between these real photos and the training photos."]
    return "\n".join(lines) + "\n"

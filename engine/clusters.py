"""pix2pixHD instance-feature clustering (Wang et al. 2018, section 3.4).

The feature encoder maps a real photo to a few channels per pixel, averaged inside each instance.
Encoding a set of real photos and running k-means per class gives a small palette of styles per class
(road surfaces, car paints, facades). The editor lets the user give each instance one of its class's
cluster centres; generation without a style photo picks them by seed.

The clusters are stored beside the model as ``features_clustered.safetensors`` (``class_<index>``:
``(k, feat_num)`` float32) and named in the card under ``files.clusters``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

CLUSTER_FILE = "features_clustered.safetensors"
MIN_INSTANCE_PIXELS = 64     # tiny instances give noisy feature means


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """k-means++ initialisation then Lloyd iterations; returns (min(k, n), d) centres."""
    n = len(x)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        if d2.sum() <= 0:
            break
        centres.append(x[rng.choice(n, p=d2 / d2.sum())])
    c = np.asarray(centres, dtype=np.float64)
    for _ in range(iters):
        assign = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[assign == j].mean(0) if np.any(assign == j) else c[j] for j in range(len(c))])
        if np.allclose(new, c):
            break
        c = new
    return c.astype(np.float32)


def instance_features(model, image: np.ndarray, labels: np.ndarray, instances: np.ndarray | None):
    """(class index, feature vector) for every instance of one photo, from the model's encoder."""
    import torch

    from .labels.maps import resize_nearest
    from .registry import _image_tensor

    inst = instances if instances is not None else labels
    f = 2 ** 4                                                  # the encoder's total stride (official 4)
    h, w = (max(f, round(v / f) * f) for v in labels.shape)
    if (h, w) != labels.shape:
        labels, inst = resize_nearest(labels, (w, h)), resize_nearest(inst, (w, h))
    img = _image_tensor(image, (w, h)).to(model.device)
    it = torch.from_numpy(inst.astype(np.int64))[None, None].to(model.device)
    with torch.inference_mode():
        feat = model.encoder(img, it)[0].cpu().numpy()          # (k, H, W), constant per instance
    out = []
    for iid in np.unique(inst):
        m = inst == iid
        if m.sum() < MIN_INSTANCE_PIXELS:
            continue
        cls = int(np.bincount(labels[m]).argmax())
        ys, xs = np.nonzero(m)
        out.append((cls, feat[:, ys[0], xs[0]].astype(np.float32)))
    return out


def cluster_model(model_dir: Path | str, data: Path | str, split: str = "train", n_clusters: int = 10,
                  limit: int | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Encode a dataset with the model's feature encoder, k-means per class, save beside the card."""
    from .cards import ModelError, load_card, save_safetensors, sha256_file, write_card
    from .registry import load_model
    from .train.datasets import PairedDataset

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: clustering needs a model folder (inspect the checkpoint first)")
    model = load_model(model_dir)
    if model.family != "pix2pixhd" or not model.generator.cfg.feat_num:
        raise ModelError(f"{model.name}: only pix2pixHD models with instance features use feature clusters")
    if model.encoder is None:
        raise ModelError(f"{model.name}: no feature encoder (latest_net_E.pth) beside the generator")
    ds = PairedDataset(data, model.labelset, split, limit=limit)
    per_class: dict[int, list[np.ndarray]] = {}
    for i, s in enumerate(ds.samples):
        for cls, f in instance_features(model, s.image, s.labels, s.instances):
            per_class.setdefault(cls, []).append(f)
        if progress:
            progress(i + 1, len(ds))
    if not per_class:
        raise ModelError(f"{data}: no instances large enough to cluster")
    tensors = {f"class_{c}": kmeans(np.stack(v), n_clusters, seed=c) for c, v in sorted(per_class.items())}
    path = model_dir / CLUSTER_FILE
    save_safetensors(tensors, path)
    card = load_card(model_dir)
    card.setdefault("files", {})["clusters"] = {"path": CLUSTER_FILE, "sha256": sha256_file(path),
                                               "bytes": path.stat().st_size}
    card["clusters"] = {"data": Path(data).name, "split": split, "images": len(ds), "n_clusters": n_clusters,
                        "classes": {c: len(v) for c, v in sorted(per_class.items())}}
    write_card(model_dir, card)
    return card["clusters"]

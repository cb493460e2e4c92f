"""Label-map operations: boundary maps, one-hot encoding, nearest-only resizing.

Numpy for the editor and IO; torch variants for the networks (imported lazily).
"""
from __future__ import annotations

import numpy as np


def boundary_map(inst: np.ndarray) -> np.ndarray:
    """Instance boundary map exactly as pix2pixHD/SPADE ``get_edges``.

    A pixel is marked when it differs from its left, right, upper or lower neighbour (both pixels of a
    differing pair are marked). Works on (H, W) or (..., H, W) arrays; returns bool of the same shape.
    """
    t = np.asarray(inst)
    edge = np.zeros(t.shape, dtype=bool)
    dx = t[..., :, 1:] != t[..., :, :-1]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    dy = t[..., 1:, :] != t[..., :-1, :]
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge


def boundary_map_torch(inst):
    """Torch version of :func:`boundary_map` for (B, 1, H, W) tensors; returns float."""
    import torch

    edge = torch.zeros_like(inst, dtype=torch.bool)
    dx = inst[:, :, :, 1:] != inst[:, :, :, :-1]
    edge[:, :, :, 1:] |= dx
    edge[:, :, :, :-1] |= dx
    dy = inst[:, :, 1:, :] != inst[:, :, :-1, :]
    edge[:, :, 1:, :] |= dy
    edge[:, :, :-1, :] |= dy
    return edge.float()


def label_keys(labels, instances=None, instance_edge: bool = True):
    """(1, H, W) int32 look-up keys for the fast generator paths from an (H, W) label map and instance
    map: ``class * 2 + instance-boundary bit``, or the class alone for models without an edge input.
    The one-hot input is never built."""
    import torch

    from ..devices import trim_heap

    lab = torch.as_tensor(np.asarray(labels) if not hasattr(labels, "dim") else labels).to(torch.int32)
    if not instance_edge:
        return lab[None]
    inst = lab if instances is None else torch.as_tensor(np.asarray(instances) if not hasattr(instances, "dim")
                                                         else instances)
    keys = boundary_map_torch(inst[None, None])[0, 0].to(torch.int32).add_(lab).add_(lab)[None]
    trim_heap()
    return keys


def keys_from_semantics(seg, n_onehot: int, edge: bool):
    """The inverse of :func:`semantics_tensor` for the fast paths: (B, H, W) look-up keys (class, or
    ``2 * class + edge`` when ``edge``) from a (B, C, H, W) tensor whose first ``n_onehot`` channels are
    exactly one-hot [and the next one exactly 0/1]; None for anything else (soft or mixed maps)."""
    oh = seg[:, :n_onehot]
    if not (bool(((oh == 0) | (oh == 1)).all()) and bool((oh.sum(1) == 1).all())):
        return None
    lab = oh.argmax(1)
    if not edge:
        return lab
    e = seg[:, n_onehot]
    if not bool(((e == 0) | (e == 1)).all()):
        return None
    return lab * 2 + e.long()


def resize_nearest(labels: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) integer map to (W, H) = ``size_wh``.

    Uses the same source-pixel rule as torch's legacy ``nearest`` (floor(dst * in/out)), never blends.
    """
    w, h = size_wh
    H, W = labels.shape[:2]
    if (W, H) == (w, h):
        return labels.copy()
    ys = np.minimum((np.arange(h) * (H / h)).astype(np.int64), H - 1)
    xs = np.minimum((np.arange(w) * (W / w)).astype(np.int64), W - 1)
    return labels[ys[:, None], xs[None, :]]


def check_label_range(labels: np.ndarray, num_indices: int, what: str = "label map") -> None:
    """Raise ValueError listing out-of-range ids."""
    bad = np.unique(labels[(labels < 0) | (labels >= num_indices)])
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:12]) + (" …" if bad.size > 12 else "")
        raise ValueError(f"{what} has ids outside 0..{num_indices - 1}: {shown}")


def semantics_tensor(labels, n_channels: int, instance=None):
    """SPADE/pix2pixHD generator input: one-hot (B, C, H, W) [+ instance boundary channel].

    ``labels`` is a (B, 1, H, W) or (H, W) integer tensor/array; ``instance`` likewise or None.
    """
    import torch

    lab = torch.as_tensor(np.asarray(labels) if not hasattr(labels, "dim") else labels).long()
    if lab.dim() == 2:
        lab = lab[None, None]
    b, _, h, w = lab.shape
    onehot = torch.zeros(b, n_channels, h, w, dtype=torch.float32, device=lab.device)
    onehot.scatter_(1, lab, 1.0)
    if instance is None:
        return onehot
    inst = torch.as_tensor(np.asarray(instance) if not hasattr(instance, "dim") else instance)
    if inst.dim() == 2:
        inst = inst[None, None]
    return torch.cat([onehot, boundary_map_torch(inst.to(lab.device).long())], dim=1)


def pseudo_instances(labels: np.ndarray, thing_indices) -> np.ndarray:
    """An instance map for a label map that has none, in the Cityscapes convention: every connected
    component (8-connected) of a *thing* class ``c`` gets ``c * 1000 + k`` (k = 0, 1, ...); stuff
    pixels keep their class index. Separate cars become separate instances, so each gets its own
    instance features and its own boundary."""
    import cv2

    labels = np.asarray(labels)
    out = labels.astype(np.int32).copy()
    for c in thing_indices:
        mask = (labels == c).astype(np.uint8)
        if not mask.any():
            continue
        n, comp = cv2.connectedComponents(mask, connectivity=8)
        out[mask > 0] = c * 1000 + comp[mask > 0] - 1
    return out

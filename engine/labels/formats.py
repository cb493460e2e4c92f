"""Every label-map file format the editor reads and writes, in one table (numpy, PIL, OpenCV).

Import: indexed PNG, dataset ids in grey (Cityscapes ``labelIds``, ADE20K's 0 = other, COCO-Stuff's
255 = unlabeled — the label set says which), Cityscapes ``instanceIds``, colour-coded PNG (unknown
colours become void and are reported), labelme JSON (rasterised).
Export: indexed PNG, dataset ids, colour PNG, Cityscapes ``instanceIds``, 16-bit instance map, edges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .io import LabelIOError, open_image, read_label_png, save_image_atomic, write_label_png, write_raw_label_png
from .labelsets import LabelSet

IMPORT_FORMATS = {
    "auto": "Automatic (by file: indexed, grey ids, colours, labelme JSON)",
    "indexed": "Indexed PNG (palette indices)",
    "raw": "Dataset ids in grey (Cityscapes labelIds, ADE20K, COCO-Stuff)",
    "cityscapes_instance": "Cityscapes instanceIds (16-bit: class*1000 + instance)",
    "colour": "Colour-coded PNG (unknown colours become void)",
    "labelme": "labelme JSON (polygons rasterised)",
}
EXPORT_FORMATS = {
    "indexed": ("Indexed PNG", ".png"),
    "raw": ("Dataset ids in grey (labelIds / ADE20K / COCO-Stuff)", ".png"),
    "colour": ("Colour-coded PNG", ".png"),
    "cityscapes_instance": ("Cityscapes instanceIds (16-bit)", ".png"),
    "instances": ("Instance map (16-bit grey)", ".png"),
    "edges": ("Edge / sketch map (grey)", ".png"),
}


@dataclass
class Imported:
    labels: np.ndarray                       # (H, W) indices of the label set
    instances: np.ndarray | None = None      # (H, W) uint16 ids, 0 = none
    notes: list[str] = field(default_factory=list)   # what the user should know (unknown colours, ...)


def _renumber(ids: np.ndarray) -> np.ndarray:
    """Raw instance values (0 = none) as consecutive ids 1..n in uint16."""
    u, inv = np.unique(ids, return_inverse=True)
    new = np.arange(len(u), dtype=np.int64)
    if u[0] != 0:
        new += 1
    if new.max(initial=0) > 65535:
        raise LabelIOError("more than 65535 instances")
    return new[inv].reshape(ids.shape).astype(np.uint16)


def import_labels(path: Path | str, ls: LabelSet, fmt: str = "auto") -> Imported:
    """Read a label file in ``fmt`` (see :data:`IMPORT_FORMATS`); errors are :class:`LabelIOError`."""
    from .convert import import_colour_coded_report, read_labelme

    path = Path(path)
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"unknown import format '{fmt}'")
    if fmt == "auto":
        if path.suffix.lower() == ".json":
            fmt = "labelme"
        else:
            mode = open_image(path).mode
            fmt = "colour" if mode in ("RGB", "RGBA") else "cityscapes_instance" if (
                mode.startswith("I") and "instanceIds" in path.name) else "auto_png"
    if fmt == "labelme":
        labels, inst, rep = read_labelme(path, ls)
        notes = []
        if rep["unknown"]:
            notes.append(f"labels not in {ls.title}, left void: " + ", ".join(
                f"'{k}' ({v} shape{'s' if v > 1 else ''})" for k, v in sorted(rep["unknown"].items())))
        if rep["skipped"]:
            notes.append(f"{rep['skipped']} shape(s) of an unsupported type or without enough points were skipped")
        return Imported(labels, inst if inst.any() else None, notes)
    if fmt == "colour":
        rgb = np.array(open_image(path).convert("RGB"))
        labels, unknown = import_colour_coded_report(rgb, ls)
        notes = []
        if unknown:
            total = sum(unknown.values())
            shown = ", ".join(f"{k} ({v} px)" for k, v in sorted(unknown.items(), key=lambda kv: -kv[1])[:8])
            more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
            notes.append(f"{len(unknown)} colour(s) are not in {ls.title}; {total} pixel(s) became void: "
                         f"{shown}{more}")
        return Imported(labels, None, notes)
    if fmt == "cityscapes_instance":
        from .io import read_instance_png, split_cityscapes_instance_ids

        ids = read_instance_png(path)
        labels, raw = split_cityscapes_instance_ids(ids)
        from .labelsets import decode_raw

        labels = decode_raw(labels, ls)
        bad = labels[(labels < 0) | (labels >= ls.num_indices)]
        if bad.size:
            raise LabelIOError(f"{path.name}: class ids {sorted(set(bad.tolist()))[:8]} are outside {ls.name}")
        inst = _renumber(np.where(raw >= 1000, raw, 0))
        return Imported(labels, inst if inst.any() else None, [])
    mode = {"auto_png": "auto", "indexed": "indexed", "raw": "raw"}[fmt]
    return Imported(read_label_png(path, ls, mode), None, [])


def cityscapes_instance_ids(labels: np.ndarray, instances: np.ndarray, ls: LabelSet) -> np.ndarray:
    """``instanceIds`` values: the dataset id, or id*1000 + k for the k-th instance (from 0) of each
    thing class; our instance ids are numbered per class in order of first appearance."""
    from .labelsets import encode_raw

    raw = encode_raw(labels, ls).astype(np.int64)
    out = raw.copy()
    things = set(ls.thing_indices())
    sel = (instances > 0) & np.isin(labels, list(things)) if things else instances > 0
    if sel.any():
        pairs = raw[sel] * 65536 + instances[sel].astype(np.int64)
        u, first, inv = np.unique(pairs, return_index=True, return_inverse=True)
        cls = u // 65536
        k = np.zeros(len(u), np.int64)
        for c in np.unique(cls):                      # number each class's instances 0, 1, ...
            idx = np.flatnonzero(cls == c)
            k[idx[np.argsort(first[idx])]] = np.arange(len(idx))
        if k.max() > 999:
            raise LabelIOError("Cityscapes instanceIds allow at most 1000 instances per class")
        out[sel] = cls[inv] * 1000 + k[inv]
    if out.max(initial=0) > 65535:
        raise LabelIOError("a dataset id is too large for Cityscapes instanceIds")
    return out


def export_labels(path: Path | str, fmt: str, labels: np.ndarray, ls: LabelSet,
                  instances: np.ndarray | None = None, edges: np.ndarray | None = None) -> Path:
    """Write ``fmt`` (see :data:`EXPORT_FORMATS`) atomically; a missing layer is a clear error."""
    path = Path(path)
    if fmt == "indexed":
        write_label_png(path, labels, ls)
    elif fmt == "raw":
        write_raw_label_png(path, labels, ls)
    elif fmt == "colour":
        save_image_atomic(Image.fromarray(ls.palette()[labels.astype(np.intp)]), path)
    elif fmt in ("cityscapes_instance", "instances"):
        if instances is None or not instances.any():
            raise LabelIOError("there are no instances to export (paint with New Instance, N)")
        arr = cityscapes_instance_ids(labels, instances, ls) if fmt == "cityscapes_instance" else instances
        save_image_atomic(Image.fromarray(arr.astype(np.uint16)), path)
    elif fmt == "edges":
        if edges is None or not edges.any():
            raise LabelIOError("the edge layer is empty")
        save_image_atomic(Image.fromarray(edges.astype(np.uint8), mode="L"), path)
    else:
        raise ValueError(f"unknown export format '{fmt}'")
    return path

"""Converting label maps between label sets, and importing labelme JSON (numpy and OpenCV only).

A conversion is an explicit mapping ``source index -> target index``. :func:`default_mapping` proposes
one from class names (exact, then a small table of equivalent names used by the street, scene and COCO
sets); the editor shows it in a dialog where every row can be changed before anything is converted.
Classes left unmapped become the target set's void (or erase) index, and the dialog says how many
pixels that is.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from .io import LabelIOError
from .labelsets import LabelSet

# Names that mean the same class in different label sets (each group is one concept; the first name
# of a group that exists in the target set is used).
EQUIVALENT = (
    ("road", "street"),
    ("pavement", "sidewalk", "sidewalk pavement"),
    ("tree", "vegetation", "trees", "plant", "tree-merged"),
    ("building", "house", "building-other-merged", "skyscraper", "wall"),
    ("sign symbol", "traffic sign", "traffic light", "stop sign", "street sign", "signboard"),
    ("pole", "polegroup", "streetlight"),
    ("car", "auto", "automobile", "vehicle", "truck", "bus", "van", "caravan", "trailer"),
    ("pedestrian", "person", "people"),
    ("bicyclist", "rider", "bicycle", "motorcycle", "motorbike"),
    ("sky", "sky-other-merged", "sky-other"),
    ("fence", "guard rail", "railing", "fence-merged"),
    ("grass", "terrain", "field", "grass-merged"),
    ("void", "unlabeled", "unknown", "other", "background"),
)


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def default_mapping(src: LabelSet, dst: LabelSet) -> dict[int, int | None]:
    """Proposed target index for every source class (``None`` where nothing fits: it becomes void)."""
    by_name = {_norm(c.name): c.index for c in dst.classes}
    out: dict[int, int | None] = {}
    for c in src.classes:
        n = _norm(c.name)
        if n in by_name:
            out[c.index] = by_name[n]
            continue
        hit = None
        for group in EQUIVALENT:
            names = [_norm(g) for g in group]
            if n in names:
                hit = next((by_name[g] for g in names if g in by_name), None)
                if hit is not None:
                    break
        if hit is None and src.void_index is not None and c.index == src.void_index:
            hit = _void(dst)
        out[c.index] = hit
    return out


def _void(ls: LabelSet) -> int:
    return ls.void_index if ls.void_index is not None else ls.erase_index


def apply_mapping(labels: np.ndarray, mapping: dict[int, int | None], dst: LabelSet) -> np.ndarray:
    """Re-index ``labels`` through ``mapping`` with one look-up table; unmapped values become void."""
    lut = np.full(max(256, int(labels.max(initial=0)) + 1), _void(dst), np.int32)
    for s, d in mapping.items():
        if d is not None:
            if not 0 <= int(d) < dst.num_indices:
                raise ValueError(f"class index {d} is outside label set {dst.name}")
            lut[int(s)] = int(d)
    return lut[labels]


def unmapped_pixels(labels: np.ndarray, mapping: dict[int, int | None], src: LabelSet) -> dict[str, int]:
    """Source classes present in ``labels`` that the mapping sends to void, with pixel counts."""
    counts = np.bincount(labels.reshape(-1), minlength=src.num_indices)
    void = src.void_index
    return {src.classes[i].name: int(counts[i]) for i in range(src.num_indices)
            if counts[i] and mapping.get(i) is None and i != void}


# ---------------------------------------------------------------- colour-coded with a report
def import_colour_coded_report(rgb: np.ndarray, ls: LabelSet) -> tuple[np.ndarray, dict[str, int]]:
    """Like :func:`~engine.labels.io.import_colour_coded`, but colours not in the set become void and
    are reported as ``{"#rrggbb": pixels}`` instead of refusing the file."""
    rgb = rgb[..., :3].astype(np.uint32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lut: dict[int, int] = {}
    for c in ls.classes:
        lut.setdefault((c.color[0] << 16) | (c.color[1] << 8) | c.color[2], c.index)
    uniq, inv, cnt = np.unique(code.reshape(-1), return_inverse=True, return_counts=True)
    void = _void(ls)
    mapped = np.array([lut.get(u, void) for u in uniq.tolist()], np.int32)
    unknown = {f"#{u:06x}": int(n) for u, n in zip(uniq.tolist(), cnt.tolist()) if u not in lut}
    return mapped[inv].reshape(code.shape), unknown


# ---------------------------------------------------------------- labelme
def _match_class(name: str, ls: LabelSet) -> int | None:
    n = _norm(name)
    for c in ls.classes:
        if _norm(c.name) == n:
            return c.index
    for group in EQUIVALENT:
        names = [_norm(g) for g in group]
        if n in names:
            for g in names:
                for c in ls.classes:
                    if _norm(c.name) == g:
                        return c.index
    return None


def read_labelme(path: Path | str, ls: LabelSet, size: tuple[int, int] | None = None):
    """Rasterise a labelme JSON file in its drawing order (later shapes on top).

    Returns ``(labels, instances, report)``: class indices of ``ls``, instance ids (one per shape with
    a ``group_id``, or per shape of a thing class; 0 elsewhere), and a report ``{"unknown": {label:
    shapes}, "skipped": n}`` of what could not be placed. ``size`` (w, h) is used when the file does
    not say its image size.
    """
    import cv2

    path = Path(path)
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LabelIOError(f"{path.name}: not a labelme JSON file ({e.__class__.__name__})") from None
    if not isinstance(d, dict) or not isinstance(d.get("shapes"), list):
        raise LabelIOError(f"{path.name}: not a labelme JSON file (no 'shapes' list)")
    w, h = d.get("imageWidth"), d.get("imageHeight")
    if not (isinstance(w, int) and isinstance(h, int)) and d.get("imageData"):
        from PIL import Image

        try:
            w, h = Image.open(io.BytesIO(base64.b64decode(d["imageData"]))).size
        except Exception:  # noqa: BLE001 - a broken embedded image only loses the size
            w = h = None
    if not (isinstance(w, int) and isinstance(h, int)):
        if size is None:
            raise LabelIOError(f"{path.name}: the file does not give its image size (imageWidth/imageHeight)")
        w, h = size
    if w <= 0 or h <= 0 or w * h > 64_000_000:
        raise LabelIOError(f"{path.name}: image size {w}x{h} is not usable")
    void = _void(ls)
    labels = np.full((h, w), void, np.uint8)
    inst = np.zeros((h, w), np.uint16)
    unknown: dict[str, int] = {}
    skipped = 0
    groups: dict[tuple[str, int], int] = {}
    things = set(ls.thing_indices())
    for s in d["shapes"]:
        name = str(s.get("label", "")).strip()
        kind = s.get("shape_type") or "polygon"
        try:
            pts = np.asarray(s.get("points", []), np.float64).reshape(-1, 2)
        except ValueError:
            skipped += 1
            continue
        idx = _match_class(name, ls)
        if idx is None:
            unknown[name] = unknown.get(name, 0) + 1
            continue
        m = np.zeros((h, w), np.uint8)
        p = np.round(pts).astype(np.int32)
        if kind == "polygon" and len(p) >= 3:
            cv2.fillPoly(m, [p], 1)
        elif kind == "rectangle" and len(p) == 2:
            cv2.rectangle(m, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), 1, -1)
        elif kind == "circle" and len(p) == 2:
            r = int(round(float(np.hypot(*(pts[1] - pts[0])))))
            cv2.circle(m, tuple(int(v) for v in p[0]), r, 1, -1)
        elif kind in ("line", "linestrip") and len(p) >= 2:
            cv2.polylines(m, [p], False, 1, 1)
        elif kind == "point" and len(p) == 1:
            cv2.circle(m, tuple(int(v) for v in p[0]), 1, 1, -1)
        elif kind == "mask" and s.get("mask") and len(p) >= 1:
            from PIL import Image

            try:
                sub = np.array(Image.open(io.BytesIO(base64.b64decode(s["mask"])))) > 0
            except Exception:  # noqa: BLE001
                skipped += 1
                continue
            x0, y0 = int(p[0][0]), int(p[0][1])
            hh, ww = min(sub.shape[0], h - y0), min(sub.shape[1], w - x0)
            if hh > 0 and ww > 0 and x0 >= 0 and y0 >= 0:
                m[y0:y0 + hh, x0:x0 + ww] = sub[:hh, :ww]
        else:
            skipped += 1
            continue
        sel = m.astype(bool)
        labels[sel] = idx
        gid = s.get("group_id")
        if gid is not None or idx in things:
            key = (name, int(gid)) if gid is not None else (name, -len(groups) - 1)
            k = groups.setdefault(key, len(groups) + 1)
            inst[sel] = k
        else:
            inst[sel] = 0
    return labels, inst, {"unknown": unknown, "skipped": skipped}

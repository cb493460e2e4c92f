"""Label-map file formats: indexed PNG with palette, colour-coded PNG (exact palette match),
grey PNG with raw dataset ids (Cityscapes ``labelIds``, ADE20K, COCO-Stuff), 16-bit instance maps
(Cityscapes ``instanceIds``). All writes are atomic.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .labelsets import LabelSet, decode_raw, encode_raw


class LabelIOError(ValueError):
    """A label file that cannot be read as asked; the message names the file and the problem."""


def new_file_mode() -> int:
    """The mode a plainly created file gets under this process's umask (mkstemp's files are 0600).

    Linux reports the umask in /proc/self/status. Elsewhere it can only be read by setting it; the
    brief stand-in is the most restrictive mask, so a file another thread creates in that instant is
    private rather than world-writable."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(d: Path) -> None:
    """Make a rename durable (POSIX); Windows cannot open folders and needs nothing here."""
    try:
        fd = os.open(str(d), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, before_rename=None) -> None:
    """Write to a temporary file beside ``path``, flush and fsync it, rename it over ``path`` and fsync
    the folder: a crash or a kill at any point leaves either the old file or the new one, whole.
    ``before_rename(tmp_path)`` is a test hook (a kill there must leave the old file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, new_file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if before_rename is not None:
            before_rename(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def save_image_atomic(img: Image.Image, path: Path | str, fmt: str = "PNG", **kw) -> None:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    atomic_write_bytes(path, buf.getvalue())


def open_image(path: Path | str) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise LabelIOError(f"{path}: no such file")
    try:
        img = Image.open(path)
        img.load()
        return img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise LabelIOError(f"{path.name}: not a readable image ({e})") from None


def colorize(labels: np.ndarray, ls: LabelSet) -> np.ndarray:
    return ls.palette()[np.clip(labels, 0, 255).astype(np.intp)]


def write_label_png(path: Path | str, labels: np.ndarray, ls: LabelSet) -> None:
    """Indexed PNG: pixel value = label-set index, palette = the label set's colours."""
    labels = np.asarray(labels)
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise LabelIOError("indexed PNG holds label indices 0..255 only")
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(ls.palette().reshape(-1).tolist())
    save_image_atomic(img, path)


def import_colour_coded(rgb: np.ndarray, ls: LabelSet, name: str = "image") -> np.ndarray:
    """Map an RGB label picture to indices by exact palette match; unknown colours are an error."""
    rgb = rgb[..., :3].astype(np.uint32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lut: dict[int, int] = {}
    for c in ls.classes:
        key = (c.color[0] << 16) | (c.color[1] << 8) | c.color[2]
        lut.setdefault(key, c.index)  # first class wins when colours repeat (Cityscapes' black ids)
    uniq, inv = np.unique(code.reshape(-1), return_inverse=True)
    unknown = [u for u in uniq.tolist() if u not in lut]
    if unknown:
        shown = ", ".join(f"#{u:06x}" for u in unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise LabelIOError(f"{name}: {len(unknown)} colour(s) are not in label set {ls.name}: {shown}")
    mapped = np.array([lut[u] for u in uniq.tolist()], dtype=np.int32)
    return mapped[inv].reshape(code.shape)


def read_label_png(path: Path | str, ls: LabelSet, mode: str = "auto") -> np.ndarray:
    """Read a label map as (H, W) int32 indices of ``ls``.

    ``mode``: ``auto`` (indexed PNG -> indices; grey -> raw dataset ids; RGB -> colour match),
    ``indexed``, ``raw`` or ``colour``. Ids outside the label set are an error.
    """
    path = Path(path)
    img = open_image(path)
    if mode == "auto":
        if img.mode == "P":
            mode = "indexed"
        elif img.mode in ("L", "I", "I;16", "I;16B", "I;16L"):
            mode = "raw"
        elif img.mode in ("RGB", "RGBA"):
            mode = "colour"
        else:
            raise LabelIOError(f"{path.name}: unsupported image mode {img.mode} for a label map")
    if mode == "indexed":
        if img.mode != "P":
            raise LabelIOError(f"{path.name}: not an indexed (palette) PNG")
        labels = np.array(img).astype(np.int32)
    elif mode == "raw":
        arr = np.array(img)
        if arr.ndim != 2:
            raise LabelIOError(f"{path.name}: raw label ids need a single-channel image")
        labels = decode_raw(arr.astype(np.int32), ls)
    elif mode == "colour":
        labels = import_colour_coded(np.array(img.convert("RGB")), ls, path.name)
    else:
        raise ValueError(f"unknown label read mode '{mode}'")
    bad = np.unique(labels[(labels < 0) | (labels >= ls.num_indices)])
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:12]) + (" …" if bad.size > 12 else "")
        raise LabelIOError(f"{path.name}: label ids {shown} are outside label set {ls.name} "
                           f"(0..{ls.num_indices - 1})")
    return labels


def write_raw_label_png(path: Path | str, labels: np.ndarray, ls: LabelSet) -> None:
    """Grey PNG with the dataset's raw ids (Cityscapes labelIds, ADE20K 0=unknown, COCO 255=dontcare)."""
    raw = encode_raw(labels, ls)
    save_image_atomic(Image.fromarray(raw.astype(np.uint8), mode="L"), path)


def read_instance_png(path: Path | str) -> np.ndarray:
    """Instance map (8- or 16-bit grey) as (H, W) int32 ids."""
    img = open_image(path)
    arr = np.array(img)
    if arr.ndim != 2:
        raise LabelIOError(f"{Path(path).name}: an instance map must be single-channel (8- or 16-bit)")
    return arr.astype(np.int32)


def write_instance_png(path: Path | str, inst: np.ndarray) -> None:
    """16-bit grey PNG (Cityscapes ``instanceIds`` style)."""
    inst = np.asarray(inst)
    if inst.min(initial=0) < 0 or inst.max(initial=0) > 65535:
        raise LabelIOError("instance ids must be within 0..65535 for a 16-bit PNG")
    save_image_atomic(Image.fromarray(inst.astype(np.uint16)), path)


def split_cityscapes_instance_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cityscapes ``instanceIds``: id < 1000 is a class id without instances, else class*1000 + k.

    Returns (class labels, instance ids) where instance ids are the raw values (unique per object).
    """
    ids = ids.astype(np.int32)
    labels = np.where(ids >= 1000, ids // 1000, ids)
    return labels, ids


def join_cityscapes_instance_ids(labels: np.ndarray, instance_index: np.ndarray) -> np.ndarray:
    """Inverse: ``instance_index`` 0 = no instance, k >= 1 = k-th object -> class*1000 + (k-1)."""
    labels = labels.astype(np.int32)
    k = instance_index.astype(np.int32)
    return np.where(k > 0, labels * 1000 + (k - 1), labels)

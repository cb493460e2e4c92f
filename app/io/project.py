"""``.semstudio`` project files: a zip shaped like OpenRaster. No Qt here.

Layout (version 1):

    mimetype                     "application/x-semstudio-project", stored uncompressed, first entry
    project.json                 {"format": "semstudio-project", "version": 1, labelset, size, layers, ...}
    labelset.json                the label set itself (so a project opens where that set is not installed)
    layers/labels.png            indexed PNG (label-set indices, the set's palette)
    layers/instances.png         16-bit grey
    layers/photo.png, layers/edges.png, layers/mask.png, results/result.png   (when present)
    styles/<name>.png            style images the project refers to
    frames/<i>_labels.png        timeline label frames (when the project is a sequence)
    Thumbnails/thumbnail.png     at most 256 px, as OpenRaster has it

Saving is atomic: the zip is written to a temporary file beside the target, flushed and fsynced, then
renamed over it (and the folder fsynced), so a crash or a kill during a save leaves the previous file
whole. Reading checks everything before returning: a corrupt, foreign or newer-version file raises
:class:`ProjectError` with one clear sentence and nothing is changed by the caller.

Older versions are upgraded on read by ``MIGRATIONS`` (version -> function of the project.json dict).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

MIMETYPE = "application/x-semstudio-project"
FORMAT = "semstudio-project"
VERSION = 1
SUFFIX = ".semstudio"
LAYER_KINDS = ("photo", "result", "labels", "instances", "edges", "mask")    # also the default order, bottom up
THUMB = 256


class ProjectError(ValueError):
    """A project file that cannot be opened; the message says why in one sentence."""


@dataclass
class LayerProps:
    visible: bool = True
    opacity: float = 1.0
    locked: bool = False


@dataclass
class Project:
    labelset: object                                    # engine.labels.LabelSet
    labels: np.ndarray                                  # (H, W) uint8/uint16 indices
    instances: np.ndarray | None = None                 # (H, W) int32
    photo: np.ndarray | None = None                     # (H, W, 3) uint8
    edges: np.ndarray | None = None                     # (H, W) uint8
    result: np.ndarray | None = None                    # (H, W, 3) uint8
    mask: np.ndarray | None = None                      # (H, W) bool
    layers: dict[str, LayerProps] = field(default_factory=dict)
    order: list[str] = field(default_factory=lambda: list(LAYER_KINDS))
    styles: dict[str, np.ndarray] = field(default_factory=dict)
    frames: list[np.ndarray] = field(default_factory=list)
    settings: dict = field(default_factory=dict)        # model, seed, prompt, fps, ... (JSON only)

    @property
    def size(self) -> tuple[int, int]:
        return self.labels.shape[1], self.labels.shape[0]


# ---------------------------------------------------------------- migrations
def _v0_to_v1(d: dict) -> dict:
    """Version 0 (pre-release) kept the label-set name under "labels"; 1 calls it "labelset"."""
    d = dict(d)
    d["labelset"] = d.pop("labels", d.get("labelset"))
    d.setdefault("layers", {})
    return d


MIGRATIONS = {0: _v0_to_v1}


def migrate(d: dict) -> dict:
    v = d.get("version")
    if not isinstance(v, int):
        raise ProjectError("project.json has no format version")
    if v > VERSION:
        raise ProjectError(f"this project was saved by a newer Semantic Studio (format {v}; this version reads up "
                           f"to {VERSION})")
    while v < VERSION:
        if v not in MIGRATIONS:
            raise ProjectError(f"project format {v} is too old to open")
        d = MIGRATIONS[v](d)
        v += 1
        d["version"] = v
    return d


# ---------------------------------------------------------------- writing
def _png(arr: np.ndarray, mode: str | None = None, palette: np.ndarray | None = None) -> bytes:
    img = Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)
    if palette is not None:
        img.putpalette(palette.reshape(-1).tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def thumbnail(p: Project) -> np.ndarray:
    base = p.result if p.result is not None else p.photo if p.photo is not None else \
        p.labelset.palette()[np.clip(p.labels, 0, 255).astype(np.intp)]
    img = Image.fromarray(base)
    img.thumbnail((THUMB, THUMB), Image.BILINEAR)
    return np.asarray(img)


def to_bytes(p: Project) -> bytes:
    """The project as zip bytes."""
    w, h = p.size
    for name in ("instances", "photo", "edges", "result", "mask"):
        a = getattr(p, name)
        if a is not None and a.shape[:2] != (h, w):
            raise ProjectError(f"the {name} layer is {a.shape[1]}x{a.shape[0]} but the labels are {w}x{h}")
    entries: list[tuple[str, bytes]] = []
    pal = p.labelset.palette()
    if p.labels.max(initial=0) > 255:
        lab = _png(p.labels.astype(np.uint16))
    else:
        lab = _png(p.labels.astype(np.uint8), "P", pal)
    entries.append(("layers/labels.png", lab))
    if p.instances is not None:
        if p.instances.min(initial=0) < 0 or p.instances.max(initial=0) > 65535:
            raise ProjectError("instance ids must be within 0..65535")
        entries.append(("layers/instances.png", _png(p.instances.astype(np.uint16))))
    for name in ("photo", "result"):
        a = getattr(p, name)
        if a is not None:
            entries.append((("results/" if name == "result" else "layers/") + f"{name}.png",
                            _png(np.ascontiguousarray(a[..., :3].astype(np.uint8)))))
    if p.edges is not None:
        entries.append(("layers/edges.png", _png(p.edges.astype(np.uint8))))
    if p.mask is not None:
        entries.append(("layers/mask.png", _png(np.where(p.mask, 255, 0).astype(np.uint8))))
    style_names = []
    for k, img in p.styles.items():
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in k)[:64] or "style"
        while safe in style_names:
            safe += "_"
        style_names.append(safe)
        entries.append((f"styles/{safe}.png", _png(np.ascontiguousarray(img[..., :3].astype(np.uint8)))))
    for i, f in enumerate(p.frames):
        if f.shape != p.labels.shape:
            raise ProjectError(f"timeline frame {i} is {f.shape[1]}x{f.shape[0]} but the labels are {w}x{h}")
        entries.append((f"frames/{i:05d}_labels.png", _png(f.astype(np.uint8), "P", pal)))
    entries.append(("Thumbnails/thumbnail.png", _png(thumbnail(p))))
    meta = {"format": FORMAT, "version": VERSION, "labelset": p.labelset.name, "size": [w, h],
            "layers": {k: vars(v) for k, v in p.layers.items()}, "order": list(p.order),
            "present": sorted(n for n in LAYER_KINDS if n == "labels" or getattr(p, n) is not None),
            "styles": dict(zip(style_names, p.styles)), "frames": len(p.frames), "settings": p.settings}
    try:
        json.dumps(p.settings)
    except (TypeError, ValueError) as e:
        raise ProjectError(f"project settings must be JSON values ({e})") from None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE.encode(), compress_type=zipfile.ZIP_STORED)
        z.writestr("project.json", json.dumps(meta, indent=1), compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("labelset.json", json.dumps(p.labelset.to_json(), indent=1), compress_type=zipfile.ZIP_DEFLATED)
        for name, data in entries:                      # PNGs are compressed already
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def save_project(p: Project, path: Path | str, _before_rename=None) -> Path:
    """Atomic save (engine.labels.io.atomic_write_bytes: temp file, fsync, rename, fsync the folder).
    ``_before_rename`` is a test hook called with the temp path (a crash there leaves ``path`` whole)."""
    from engine.labels.io import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, to_bytes(p), before_rename=_before_rename)
    return path


# ---------------------------------------------------------------- reading
def _read_png(z: zipfile.ZipFile, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(z.read(name))) as im:
            im.load()
            return np.array(im)
    except KeyError:
        raise ProjectError(f"the project is missing {name}") from None
    except Exception as e:  # noqa: BLE001 - a damaged entry, whatever the decoder says
        raise ProjectError(f"{name} in the project is damaged ({type(e).__name__})") from None


def load_project(path: Path | str) -> Project:
    from engine.labels.labelsets import LabelSet, get_labelset

    path = Path(path)
    if not path.exists():
        raise ProjectError(f"{path}: no such file")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ProjectError(f"{path.name} is not a Semantic Studio project (not a zip file: {e})") from None
    with z:
        names = z.namelist()
        if not names or names[0] != "mimetype" or z.read("mimetype").decode(errors="replace").strip() != MIMETYPE:
            raise ProjectError(f"{path.name} is not a Semantic Studio project (its mimetype entry is missing or "
                               "names another format)")
        bad = z.testzip()
        if bad is not None:
            raise ProjectError(f"{path.name} is damaged: {bad} fails its checksum")
        try:
            meta = json.loads(z.read("project.json"))
        except (KeyError, ValueError) as e:
            raise ProjectError(f"{path.name}: project.json is missing or unreadable ({e})") from None
        if meta.get("format") != FORMAT:
            raise ProjectError(f"{path.name}: project.json is not a Semantic Studio project description")
        meta = migrate(meta)
        try:
            ls = LabelSet.from_json(json.loads(z.read("labelset.json")))
        except KeyError:
            try:
                ls = get_labelset(meta["labelset"])
            except (KeyError, FileNotFoundError, ValueError):
                raise ProjectError(f"{path.name} uses label set '{meta.get('labelset')}', which is not "
                                   "installed and not stored in the file") from None
        except ValueError as e:
            raise ProjectError(f"{path.name}: its label set is invalid ({e})") from None
        labels = _read_png(z, "layers/labels.png")
        if labels.ndim != 2:
            raise ProjectError(f"{path.name}: the label layer is not single-channel")
        w, h = meta.get("size", [labels.shape[1], labels.shape[0]])
        if labels.shape != (h, w):
            raise ProjectError(f"{path.name}: the label layer is {labels.shape[1]}x{labels.shape[0]}, the "
                               f"project says {w}x{h}")
        if labels.max(initial=0) >= ls.num_indices:
            raise ProjectError(f"{path.name}: the labels use index {int(labels.max())}, beyond label set {ls.name}")
        p = Project(ls, labels.astype(np.uint8) if labels.max(initial=0) <= 255 else labels.astype(np.uint16))
        present = set(meta.get("present", []))
        loc = {"instances": "layers/instances.png", "photo": "layers/photo.png", "edges": "layers/edges.png",
               "result": "results/result.png", "mask": "layers/mask.png"}
        for name, entry in loc.items():
            if name not in present:
                continue
            a = _read_png(z, entry)
            if a.shape[:2] != (h, w):
                raise ProjectError(f"{path.name}: the {name} layer is {a.shape[1]}x{a.shape[0]}, not {w}x{h}")
            if name in ("photo", "result"):
                a = a[..., :3] if a.ndim == 3 else np.repeat(a[..., None], 3, 2)
                a = a.astype(np.uint8)
            elif name == "instances":
                a = a.astype(np.int32)
            elif name == "mask":
                a = a > 127
            setattr(p, name, a)
        p.layers = {k: LayerProps(**{f: v[f] for f in ("visible", "opacity", "locked") if f in v})
                    for k, v in meta.get("layers", {}).items() if k in LAYER_KINDS}
        order = [k for k in meta.get("order", []) if k in LAYER_KINDS]
        p.order = order + [k for k in LAYER_KINDS if k not in order]
        for safe, original in meta.get("styles", {}).items():
            p.styles[original] = _read_png(z, f"styles/{safe}.png")[..., :3]
        for i in range(int(meta.get("frames", 0))):
            f = _read_png(z, f"frames/{i:05d}_labels.png")
            if f.shape != (h, w):
                raise ProjectError(f"{path.name}: timeline frame {i} has the wrong size")
            p.frames.append(f.astype(np.uint8))
        p.settings = meta.get("settings", {}) if isinstance(meta.get("settings"), dict) else {}
    return p


# ---------------------------------------------------------------- autosave and recovery
def autosave_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(os.environ.get("SEMSTUDIO_DATA_DIR") or user_data_dir("SemanticStudio", appauthor=False)) / \
        "autosave"


def autosave_path(session: str) -> Path:
    return autosave_dir() / f"{session}{SUFFIX}"


def write_autosave(p: Project, session: str, original: Path | None) -> Path:
    """Autosave ``p`` for this editor session; a sidecar JSON remembers which file it belongs to."""
    out = save_project(p, autosave_path(session))
    from engine.labels.io import atomic_write_bytes

    atomic_write_bytes(out.with_suffix(".json"), json.dumps(
        {"original": str(original) if original else None, "pid": os.getpid()}).encode())
    return out


def clear_autosave(session: str) -> None:
    for f in (autosave_path(session), autosave_path(session).with_suffix(".json")):
        try:
            f.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return pid == os.getpid()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def recoverable() -> list[dict]:
    """Autosaves left by editors that are no longer running (a crash): newest first, each with its
    path, the file it belonged to and when it was written."""
    d = autosave_dir()
    out = []
    if not d.is_dir():
        return out
    for f in d.glob(f"*{SUFFIX}"):
        side = f.with_suffix(".json")
        try:
            info = json.loads(side.read_text())
        except (OSError, ValueError):
            info = {}
        if _alive(int(info.get("pid") or 0)):
            continue
        out.append({"path": str(f), "original": info.get("original"), "mtime": f.stat().st_mtime,
                    "session": f.stem})
    return sorted(out, key=lambda e: -e["mtime"])

"""The document: label layer, optional photo, generated result, undo history. No widgets here."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.labels import LabelSet, get_labelset, read_label_png, write_label_png
from engine.labels.io import open_image

from .painting import Rect, TileSnapshot, dab, flood_fill


class Patch:
    """The pixels of one edit: its rectangle and the patch before and after. Under memory pressure the
    history compresses old patches (zlib, lossless; label patches shrink 10-100x)."""

    def __init__(self, rect: Rect, before: np.ndarray, after: np.ndarray, text: str, layer: str = "labels"):
        self.rect, self.text, self.layer = rect, text, layer
        self._before, self._after = before, after
        self._packed: tuple[bytes, bytes, tuple, np.dtype] | None = None

    @property
    def before(self) -> np.ndarray:
        return self._unpack()[0]

    @property
    def after(self) -> np.ndarray:
        return self._unpack()[1]

    def _unpack(self) -> tuple[np.ndarray, np.ndarray]:
        if self._packed is None:
            return self._before, self._after
        import zlib

        b, a, shape, dt = self._packed
        return (np.frombuffer(zlib.decompress(b), dt).reshape(shape),
                np.frombuffer(zlib.decompress(a), dt).reshape(shape))

    def pack(self) -> None:
        if self._packed is None:
            import zlib

            self._packed = (zlib.compress(self._before.tobytes(), 1), zlib.compress(self._after.tobytes(), 1),
                            self._before.shape, self._before.dtype)
            self._before = self._after = None

    @property
    def packed(self) -> bool:
        return self._packed is not None

    def nbytes(self) -> int:
        if self._packed is not None:
            return len(self._packed[0]) + len(self._packed[1])
        return self._before.nbytes + self._after.nbytes


class PatchCommand(QUndoCommand):
    """One undo step (a whole stroke, a fill) holding :class:`Patch` objects — one per layer it
    changed (labels and instances for a stroke of a thing class) — never the whole image."""

    def __init__(self, doc: "Document", patches: "Patch | list[Patch]", text: str | None = None):
        patches = [patches] if isinstance(patches, Patch) else list(patches)
        self.label = text or patches[0].text
        super().__init__(self.label)
        self.doc, self.patches = doc, patches
        self._applied = True   # the edit is already on the canvas when pushed

    @property
    def patch(self) -> Patch:
        return self.patches[0]

    @property
    def rect(self) -> Rect:
        return self.patch.rect

    @property
    def before(self) -> np.ndarray:
        return self.patch.before

    @property
    def after(self) -> np.ndarray:
        return self.patch.after

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self.patches)

    def factory(self):
        """A function making an equivalent, already-applied command (the history is rebuilt when
        trimmed; it holds plain values, never this Qt object)."""
        doc, patches, label = self.doc, self.patches, self.label
        return lambda: PatchCommand(doc, patches, label)

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        for p in self.patches:
            self.doc._put_patch(p.rect, p.after, p.layer)

    def undo(self) -> None:
        for p in reversed(self.patches):
            self.doc._put_patch(p.rect, p.before, p.layer)


class Edit:
    """The patches of one undo step, as the history budget sees them."""

    def __init__(self, patches: list[Patch], remake):
        self.patches, self.remake = patches, remake

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self.patches)

    def pack(self) -> None:
        for p in self.patches:
            p.pack()

    @property
    def packed(self) -> bool:
        return all(p.packed for p in self.patches)


class LayerLocked(ValueError):
    """An edit aimed at a locked layer."""


DEFAULT_UNDO_BUDGET = 256 << 20      # bytes of undo patches kept per document (Preferences)
EDITABLE_LAYERS = ("labels", "instances", "edges")
LAYER_TITLES = {"photo": "Photo", "result": "Result", "labels": "Semantic labels", "instances": "Instances",
                "edges": "Edges / sketch", "mask": "Changed region"}


def default_layer_props() -> dict:
    from ..io.project import LayerProps

    return {"photo": LayerProps(), "result": LayerProps(visible=False), "labels": LayerProps(),
            "instances": LayerProps(), "edges": LayerProps(), "mask": LayerProps(visible=False, opacity=0.5)}


class Document(QObject):
    labels_changed = Signal(object)      # rect (x0, y0, x1, y1) or None for everything
    layer_changed = Signal(str, object)  # instances/edges edited: (layer, rect or None)
    layers_changed = Signal()            # photo/result/size/label set/layer arrays replaced
    layer_props_changed = Signal()       # visibility, opacity, lock or order
    timeline_replaced = Signal()         # a project brought its own timeline (or none)
    modified_changed = Signal(bool)
    history_trimmed = Signal(int)        # oldest undo steps dropped to stay within the budget

    def __init__(self, labelset: str | LabelSet = "camvid_11", size: tuple[int, int] = (480, 360), parent=None):
        super().__init__(parent)
        from ..io.project import LAYER_KINDS

        self.labelset = get_labelset(labelset) if isinstance(labelset, str) else labelset
        w, h = size
        self.labels = np.full((h, w), self.labelset.erase_index, dtype=np.uint8)
        self.instances: np.ndarray | None = None     # (H, W) uint16, 0 = no instance; made on first use
        self.edges: np.ndarray | None = None         # (H, W) uint8, 255 = edge / sketch line
        self.photo: np.ndarray | None = None
        self.result: np.ndarray | None = None
        self.settings: dict = {}             # per-project settings (model, seed, prompt, ...), JSON values
        self.base_labels: np.ndarray | None = None   # labels when the photo was labelled (region regeneration)
        self.fill_hint = None                # (rect, mask, value) of the fill being announced
        self.path: Path | None = None
        self.layer_order: list[str] = list(LAYER_KINDS)       # bottom to top
        self.timeline = None                 # engine.video.sequence.Timeline of the project, if any
        self.about_to_save: list = []        # callables run before the document is written (commit edits)
        self.layer_props = default_layer_props()
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.undo_budget = DEFAULT_UNDO_BUDGET
        self._cmds: list[Edit] = []               # the stack's edits, oldest first (plain Python objects)
        self._stroke: list | None = None          # [(layer, array, value, TileSnapshot), ...]
        self._stroke_last: tuple[float, float] | None = None
        self._stroke_args: tuple | None = None

    def _on_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    # ---- history with a byte budget -----------------------------------------------------------
    def _push(self, cmd: PatchCommand) -> None:
        idx = self.undo_stack.index()
        self.undo_stack.push(cmd)
        self._cmds = self._cmds[:idx] + [Edit(cmd.patches, cmd.factory())]   # pushing discards the redo branch, as Qt does
        self._enforce_budget()

    def history_bytes(self) -> int:
        return sum(c.nbytes() for c in self._cmds)

    def _enforce_budget(self) -> None:
        """Keep the history within ``undo_budget``: compress the oldest patches first (lossless), then
        drop the oldest quarter of the steps at a time (rebuilding the stack; the canvas is untouched)."""
        total = self.history_bytes()
        if total <= self.undo_budget:
            return
        for c in self._cmds[:-1]:                          # the newest stays fast to undo
            if total <= self.undo_budget:
                return
            if not c.packed:
                before = c.nbytes()
                c.pack()
                total += c.nbytes() - before
        if total <= self.undo_budget:
            return
        keep = list(self._cmds)
        while keep and sum(c.nbytes() for c in keep) > self.undo_budget:
            keep = keep[max(1, len(keep) // 4):]
        self._rebuild_history(keep)

    def _rebuild_history(self, keep: list[Edit]) -> None:
        """Replace the stack by ``keep`` (the newest steps, all applied). The clean state survives only
        if it is among them; otherwise the document stays modified."""
        stack = self.undo_stack
        clean = stack.cleanIndex()
        drop = len(self._cmds) - len(keep)
        was_modified = not stack.isClean()
        stack.blockSignals(True)
        stack.clear()
        for edit in keep:
            stack.push(edit.remake())                      # already applied: nothing is redone
        self._cmds = list(keep)
        if clean - drop >= 0 and not was_modified:
            stack.setClean()
        stack.blockSignals(False)
        if was_modified or clean - drop < 0:
            stack.resetClean()
        self.history_trimmed.emit(drop)

    def _reset_history(self) -> None:
        self.undo_stack.clear()
        self._cmds = []

    # ---- properties --------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        return self.labels.shape[1], self.labels.shape[0]

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    def labels_hash(self) -> str:
        return hashlib.blake2b(self.labels.tobytes() + bytes(str(self.labels.shape), "ascii"),
                               digest_size=16).hexdigest()

    # ---- layers ------------------------------------------------------------------------------
    def layer(self, name: str) -> np.ndarray | None:
        if name == "mask":
            return self.changed_since_base()
        return getattr(self, name) if name in ("labels", "instances", "edges", "photo", "result") else None

    def ensure_layer(self, name: str) -> np.ndarray:
        """The instance or edge layer, created empty on first use."""
        if name == "labels":
            return self.labels
        arr = self.layer(name)
        if arr is None:
            if name not in ("instances", "edges"):
                raise ValueError(f"layer '{name}' cannot be painted")
            arr = np.zeros(self.labels.shape, np.uint16 if name == "instances" else np.uint8)
            setattr(self, name, arr)
            self.layers_changed.emit()
        return arr

    def set_layer_prop(self, name: str, **kw) -> None:
        p = self.layer_props[name]
        for k, v in kw.items():
            setattr(p, k, type(getattr(p, k))(v))
        p.opacity = float(min(1.0, max(0.0, p.opacity)))
        self.layer_props_changed.emit()

    def move_layer(self, name: str, delta: int) -> None:
        """Move a layer up (+1, drawn later) or down (-1) in the stack."""
        order = self.layer_order
        i = order.index(name)
        j = min(len(order) - 1, max(0, i + delta))
        if i != j:
            order.insert(j, order.pop(i))
            self.layer_props_changed.emit()

    def check_unlocked(self, *layers: str) -> None:
        for name in layers:
            if self.layer_props[name].locked:
                raise LayerLocked(f"the {LAYER_TITLES[name].lower()} layer is locked (unlock it in the Layers panel)")

    def next_instance_id(self) -> int:
        inst = self.instances
        n = 1 if inst is None else int(inst.max(initial=0)) + 1
        if n > 65535:
            raise ValueError("too many instances: ids are limited to 65535")
        return n

    # ---- whole-document operations -----------------------------------------------------------
    def _replace_all(self, labels: np.ndarray, photo=None, result=None, instances=None, edges=None) -> None:
        self.labels = np.ascontiguousarray(labels.astype(np.uint8))
        self.photo, self.result = photo, result
        self.instances = None if instances is None else np.ascontiguousarray(instances.astype(np.uint16))
        self.edges = None if edges is None else np.ascontiguousarray(edges.astype(np.uint8))
        self.base_labels = None
        self._reset_history()
        self.layers_changed.emit()
        self.labels_changed.emit(None)

    def set_labels(self, labels: np.ndarray, path: Path | None = None, instances: np.ndarray | None = None,
                   labelset: LabelSet | None = None) -> None:
        if labelset is not None and labels.max(initial=0) >= labelset.num_indices:
            raise ValueError(f"label index {int(labels.max())} is beyond label set {labelset.name}")
        if labels.max(initial=0) > 255:
            raise ValueError("label maps with more than 256 indices are not supported by the editor yet")
        if instances is not None and instances.shape != labels.shape:
            raise ValueError("the instance map and the label map differ in size")
        if instances is not None and (instances.min(initial=0) < 0 or instances.max(initial=0) > 65535):
            raise ValueError("instance ids must be within 0..65535")
        photo = self.photo if self.photo is not None and self.photo.shape[:2] == labels.shape else None
        self.path = path
        if labelset is not None:
            self.labelset = labelset
        self._replace_all(labels, photo, None, instances, None)

    def open_labels(self, path: Path | str) -> None:
        """Read a label map; on failure raise and leave the document as it was."""
        path = Path(path)
        labels = read_label_png(path, self.labelset)
        self.set_labels(labels, path)

    def save_labels(self, path: Path | str | None = None) -> Path:
        path = Path(path) if path else self.path
        if path is None:
            raise ValueError("no file name to save to")
        write_label_png(path, self.labels, self.labelset)
        self.path = path
        self.undo_stack.setClean()
        return path

    # ---- project files -----------------------------------------------------------------------
    def to_project(self):
        from ..io.project import LayerProps, Project

        for fn in self.about_to_save:
            fn()
        settings, frames = dict(self.settings), []
        if self.timeline is not None and self.timeline.size == self.size:
            frames, settings["timeline"] = _timeline_to_project(self.timeline, self.labelset)
        else:
            settings.pop("timeline", None)
        return Project(self.labelset, self.labels.copy(), photo=self.photo, result=self.result,
                       instances=None if self.instances is None else self.instances.copy(),
                       edges=None if self.edges is None else self.edges.copy(),
                       layers={k: LayerProps(**vars(v)) for k, v in self.layer_props.items()},
                       order=list(self.layer_order), settings=settings, frames=frames)

    def apply_project(self, p, path: Path | None) -> None:
        """Replace the document by a loaded project (already fully read and checked)."""
        self.labelset = p.labelset
        self.settings = dict(p.settings)
        self.path = path
        props = default_layer_props()
        props.update({k: v for k, v in p.layers.items() if k in props})
        self.layer_props = props
        self.layer_order = list(p.order)
        self.timeline = _timeline_from_project(p) if p.frames and isinstance(p.settings.get("timeline"), dict) \
            else None
        self.settings.pop("timeline", None)
        self._replace_all(p.labels, p.photo, p.result, p.instances, p.edges)
        self.layer_props_changed.emit()
        self.timeline_replaced.emit()

    def open_project(self, path: Path | str) -> None:
        """Read a ``.semstudio`` project; on failure raise ProjectError and leave the document as it was."""
        from ..io.project import load_project

        path = Path(path)
        self.apply_project(load_project(path), path)

    def save_project(self, path: Path | str | None = None) -> Path:
        from ..io.project import SUFFIX, save_project

        path = Path(path) if path else self.path
        if path is None or path.suffix.lower() != SUFFIX:
            raise ValueError(f"a project is saved as a {SUFFIX} file")
        save_project(self.to_project(), path)
        self.path = path
        self.undo_stack.setClean()
        return path

    def new_from_photo(self, path: Path | str) -> None:
        """A new document on a photo at its own size, labels void (raise and change nothing on failure)."""
        img = np.array(open_image(path).convert("RGB"))
        h, w = img.shape[:2]
        if w * h > 64_000_000:
            raise ValueError(f"{Path(path).name}: {w}x{h} is larger than the editor's 64-megapixel limit")
        self.path = None
        self._replace_all(np.full((h, w), self.labelset.erase_index, dtype=np.uint8), img)

    def replace_labels(self, labels: np.ndarray, text: str = "Replace labels") -> PatchCommand | None:
        """Replace the whole label map as one undoable edit (e.g. auto-labels)."""
        labels = np.asarray(labels)
        if labels.shape != self.labels.shape:
            raise ValueError(f"label map {labels.shape[1]}x{labels.shape[0]} does not match the canvas "
                             f"{self.size[0]}x{self.size[1]}")
        if labels.max(initial=0) >= self.labelset.num_indices:
            raise ValueError(f"label index {int(labels.max())} is beyond label set {self.labelset.name}")
        self.check_unlocked("labels")
        before = self.labels.copy()
        after = labels.astype(np.uint8)
        if np.array_equal(before, after):
            return None
        self.labels[:] = after
        h, w = self.labels.shape
        cmd = PatchCommand(self, Patch((0, 0, w, h), before, after.copy(), text))
        self.labels_changed.emit(None)
        self._push(cmd)
        return cmd

    def convert_labelset(self, target: LabelSet, mapping: dict[int, int]) -> PatchCommand:
        """Switch to another label set, re-indexing every pixel through ``mapping`` (source index ->
        target index; unmapped classes become the target's void). One undoable step."""
        from engine.labels.convert import apply_mapping

        self.check_unlocked("labels")
        if self._stroke is not None:
            raise ValueError("finish the stroke first")
        before = self.labels.copy()
        after = apply_mapping(self.labels, mapping, target).astype(np.uint8)
        h, w = self.labels.shape
        base = self.base_labels
        base_after = None if base is None else apply_mapping(base, mapping, target).astype(np.uint8)
        cmd = LabelSetCommand(self, self.labelset, target, Patch((0, 0, w, h), before, after, "Convert labels"),
                              (base, base_after))
        self.undo_stack.push(cmd)            # redo() applies it
        self._cmds = self._cmds[:self.undo_stack.index() - 1] + [Edit(cmd.patches, cmd.factory())]
        self._enforce_budget()
        return cmd

    def _set_labelset(self, ls: LabelSet, labels: np.ndarray, base) -> None:
        self.labelset = ls
        self.labels = np.ascontiguousarray(labels.copy())
        self.base_labels = base
        self.layers_changed.emit()
        self.labels_changed.emit(None)

    def changed_since_base(self) -> np.ndarray | None:
        if self.base_labels is None or self.base_labels.shape != self.labels.shape:
            return None
        return self.base_labels != self.labels

    def open_photo(self, path: Path | str) -> None:
        img = np.array(open_image(path).convert("RGB"))
        if img.shape[:2] != self.labels.shape:
            import cv2

            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        self.photo = img
        self.base_labels = self.labels.copy()
        self.layers_changed.emit()

    def set_result(self, img: np.ndarray | None) -> None:
        self.result = img
        self.layers_changed.emit()

    # ---- edits -------------------------------------------------------------------------------
    def _announce(self, layer: str, r) -> None:
        if layer == "labels":
            self.labels_changed.emit(r)
        else:
            self.layer_changed.emit(layer, r)

    def _put_patch(self, r: Rect, patch: np.ndarray, layer: str = "labels") -> None:
        self.ensure_layer(layer)[r[1]:r[3], r[0]:r[2]] = patch
        self._announce(layer, r)

    def _targets(self, layer: str, value: int, instance: int | None) -> list[tuple[str, int]]:
        """What one brush or fill writes: the class (and the instance id where the instance layer is in
        use), an instance id alone, or an edge value."""
        if layer == "labels":
            out = [("labels", int(value))]
            if instance is not None and self.instances is not None:
                out.insert(0, ("instances", int(instance)))   # first: the protect LUT reads the old classes
            return out
        if layer in ("instances", "edges"):
            return [(layer, int(value))]
        raise ValueError(f"layer '{layer}' cannot be painted")

    def begin_stroke(self, x: float, y: float, diameter: int, value: int, shape: str = "round",
                     protect: np.ndarray | None = None, layer: str = "labels",
                     instance: int | None = None) -> Rect | None:
        """Start a stroke on ``layer`` with ``value`` (a class, an instance id, or 0/255 on the edge layer).
        On the label layer, ``instance`` is written to the instance layer under the same footprint."""
        targets = self._targets(layer, value, instance)
        self.check_unlocked(*(t[0] for t in targets))
        self._stroke = [(name, self.ensure_layer(name), v, TileSnapshot(self.ensure_layer(name)))
                        for name, v in targets]
        self._stroke_args = (int(diameter), shape, protect if layer != "edges" else None)
        self._stroke_last = (x, y)
        return self._stamp(x, y, int(diameter))

    def _stamp(self, x: float, y: float, diameter: int) -> Rect | None:
        from .painting import clip_rect, dab_rect

        _d, shape, protect = self._stroke_args
        h, w = self.labels.shape
        r = clip_rect(dab_rect(x, y, diameter), w, h)
        if r is None:
            return None
        for name, arr, v, snap in self._stroke:
            snap.capture(r)
            dab(arr, x, y, diameter, v, shape, protect, None if name == "labels" else self.labels)
        for name, *_rest in self._stroke:
            self._announce(name, r)
        return r

    def continue_stroke(self, x: float, y: float, diameter: int | None = None) -> Rect | None:
        """Extend the stroke to (x, y); ``diameter`` (tablet pressure) changes the size from here on."""
        if self._stroke is None:
            return None
        from .painting import segment_points, union_rect

        d = int(diameter) if diameter else self._stroke_args[0]
        changed = None
        for px, py in segment_points(self._stroke_last, (x, y), d):
            changed = union_rect(changed, self._stamp(px, py, d))
        self._stroke_last = (x, y)
        return changed

    def end_stroke(self, text: str = "Brush stroke") -> PatchCommand | None:
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke[0][3].rect is None:
            return None
        patches = []
        for name, arr, _v, snap in stroke:
            r = snap.rect
            before = snap.before_patch(r)
            after = arr[r[1]:r[3], r[0]:r[2]].copy()
            if not np.array_equal(before, after):
                patches.append(Patch(r, before, after, text, name))
        if not patches:
            return None
        cmd = PatchCommand(self, patches, text)
        self._push(cmd)
        return cmd

    def fill(self, x: int, y: int, value: int, contiguous: bool = True, layer: str = "labels",
             instance: int | None = None) -> PatchCommand | None:
        """Flood fill of the clicked class region (contiguous or global). On the instance layer the
        region of the clicked class gets instance id ``value``."""
        from .painting import flood_region

        text = "Fill" if contiguous else "Global fill"
        if layer == "labels":
            self.check_unlocked("labels", *(("instances",) if instance is not None and self.instances is not None
                                            else ()))
            res = flood_fill(self.labels, x, y, value, contiguous)
            if res is None:
                return None
            r, mask, old = res
            after = self.labels[r[1]:r[3], r[0]:r[2]].copy()
            before = after.copy()
            before[mask] = old
            patches = [Patch(r, before, after, text)]
            if instance is not None and self.instances is not None:
                ip = self._mask_patch("instances", r, mask, instance, text)
                if ip is not None:
                    patches.insert(0, ip)
            self.fill_hint = (r, mask, value)      # lets the canvas recolour just the filled pixels
            cmd = PatchCommand(self, patches, text)
            self.labels_changed.emit(r)
            if len(patches) > 1:
                self._announce("instances", r)
            self._push(cmd)
            return cmd
        if layer != "instances":
            raise ValueError("fill works on the label and instance layers")
        self.check_unlocked("instances")
        res = flood_region(self.labels, x, y, contiguous)
        if res is None:
            return None
        r, mask = res
        p = self._mask_patch("instances", r, mask, value, "Instance fill")
        if p is None:
            return None
        cmd = PatchCommand(self, [p])
        self._announce("instances", r)
        self._push(cmd)
        return cmd

    def _mask_patch(self, layer: str, r: Rect, mask: np.ndarray, value: int, text: str) -> Patch | None:
        """Write ``value`` into ``layer`` where ``mask`` (the size of ``r``) is set; the patch, or None."""
        region = self.ensure_layer(layer)[r[1]:r[3], r[0]:r[2]]
        m = mask & (region != value)
        if not m.any():
            return None
        before = region.copy()
        region[m] = value
        return Patch(r, before, region.copy(), text, layer)

    def fill_shape(self, rect, mask: np.ndarray, value: int, text: str, protect: np.ndarray | None = None,
                   layer: str = "labels", instance: int | None = None) -> PatchCommand | None:
        """Set ``mask`` (boolean, the size of ``rect``) to ``value`` on ``layer``: one undoable patch (line,
        polygon, lasso, smart select). ``protect`` is the preserve-labels LUT (read on the label layer)."""
        if rect is None:
            return None
        targets = self._targets(layer, value, instance)
        self.check_unlocked(*(t[0] for t in targets))
        x0, y0, x1, y1 = rect
        m = np.asarray(mask, bool)
        if protect is not None and layer != "edges":
            m = m & ~protect[self.labels[y0:y1, x0:x1]]
        patches = [p for name, v in targets if (p := self._mask_patch(name, rect, m, v, text)) is not None]
        if not patches:
            return None
        cmd = PatchCommand(self, patches, text)
        for p in patches:
            self._announce(p.layer, p.rect)
        self._push(cmd)
        return cmd

    # ---- instances ---------------------------------------------------------------------------
    def merge_instances(self, keep: int, drop: int) -> PatchCommand | None:
        """Instance ``drop`` becomes part of ``keep`` (one undoable step)."""
        from .instances import merge_region

        if self.instances is None:
            return None
        self.check_unlocked("instances")
        res = merge_region(self.instances, keep, drop)
        if res is None:
            return None
        p = self._mask_patch("instances", res[0], res[1], keep, "Merge instances")
        cmd = PatchCommand(self, [p])
        self._announce("instances", p.rect)
        self._push(cmd)
        return cmd

    def split_instance(self, ident: int, cut=None) -> PatchCommand | None:
        """Split instance ``ident`` into its connected parts (after cutting it along ``cut``, a
        ``(rect, mask)`` such as a drawn line); the largest part keeps the id."""
        from .instances import split_parts

        if self.instances is None:
            return None
        self.check_unlocked("instances")
        res = split_parts(self.instances, ident, cut)
        if res is None:
            return None
        r, before, after = res
        self.instances[r[1]:r[3], r[0]:r[2]] = after
        cmd = PatchCommand(self, [Patch(r, before, after, "Split instance", "instances")])
        self._announce("instances", r)
        self._push(cmd)
        return cmd

    def pick(self, x: int, y: int) -> int | None:
        h, w = self.labels.shape
        if 0 <= x < w and 0 <= y < h:
            return int(self.labels[y, x])
        return None

    def pick_instance(self, x: int, y: int) -> int | None:
        h, w = self.labels.shape
        if self.instances is not None and 0 <= x < w and 0 <= y < h:
            return int(self.instances[y, x])
        return None


def _timeline_to_project(tl, ls) -> tuple[list[np.ndarray], dict]:
    """A timeline as project frames (label maps; frames not filled yet are stored void) and a JSON
    description (names, keyframes with hold, range, fps, which frames were missing, RGB frame paths)."""
    void = ls.void_index if ls.void_index is not None else ls.erase_index
    frames, missing = [], []
    for i, f in enumerate(tl.frames):
        try:
            frames.append(np.asarray(tl.labels(i)).astype(np.uint8))
        except Exception:  # noqa: BLE001 - a frame with no labels yet
            frames.append(np.full((tl.size[1], tl.size[0]), void, np.uint8))
            missing.append(i)
    meta = {"fps": tl.fps, "start": tl.start, "end": tl.end, "names": [f.name for f in tl.frames],
            "keyframes": {str(k): bool(h) for k, h in tl.keyframes.items()}, "missing": missing,
            "sources": [f.source for f in tl.frames],
            "rgb": [str(f.rgb_path) if f.rgb_path is not None else None for f in tl.frames]}
    return frames, meta


def _timeline_from_project(p):
    from engine.video.sequence import Frame, Timeline

    meta = p.settings["timeline"]
    names = list(meta.get("names") or [f"frame_{i:05d}" for i in range(len(p.frames))])
    rgb = list(meta.get("rgb") or [None] * len(p.frames))
    sources = list(meta.get("sources") or ["keyframe"] * len(p.frames))
    missing = set(int(i) for i in meta.get("missing", []))
    frames = []
    for i, arr in enumerate(p.frames):
        r = Path(rgb[i]) if i < len(rgb) and rgb[i] and Path(rgb[i]).exists() else None
        src = sources[i] if i < len(sources) else "keyframe"
        frames.append(Frame(names[i] if i < len(names) else f"frame_{i:05d}", None, r,
                            labels=None if i in missing else arr.astype(np.int32),
                            source="missing" if i in missing else ("keyframe" if src == "file" else src)))
    tl = Timeline(p.labelset, p.size, frames, fps=float(meta.get("fps", 15.0)))
    tl.keyframes = {int(k): bool(h) for k, h in (meta.get("keyframes") or {}).items() if int(k) < len(frames)}
    try:
        tl.set_range(int(meta.get("start", 0)), meta.get("end"))
    except Exception:  # noqa: BLE001 - a stale range falls back to all frames
        tl.start, tl.end = 0, None
    return tl


class LabelSetCommand(PatchCommand):
    """Undoable switch of label set: the re-indexed map and the set itself."""

    def __init__(self, doc: Document, before_ls: LabelSet, after_ls: LabelSet, patch: Patch, bases):
        super().__init__(doc, [patch], f"Convert to {after_ls.title}")
        self.before_ls, self.after_ls = before_ls, after_ls
        self._applied = False                      # pushing applies it
        self._base_before, self._base_after = bases

    def factory(self):
        doc, a, b, patch, bases = self.doc, self.before_ls, self.after_ls, self.patch, \
            (self._base_before, self._base_after)

        def make():
            c = LabelSetCommand(doc, a, b, patch, bases)
            c._skip = True                         # already applied
            return c
        return make

    def redo(self) -> None:
        if getattr(self, "_skip", False):
            self._skip = False
            return
        self.doc._set_labelset(self.after_ls, self.patch.after, self._base_after)

    def undo(self) -> None:
        self.doc._set_labelset(self.before_ls, self.patch.before, self._base_before)

"""The document: label layer, optional photo, generated result, undo history. No widgets here."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.labels import LabelSet, get_labelset, read_label_png, write_label_png
from engine.labels.io import open_image

from .painting import Rect, TileSnapshot, flood_fill, stroke_segment, dab


class Patch:
    """The pixels of one edit: its rectangle and the patch before and after. Under memory pressure the
    history compresses old patches (zlib, lossless; label patches shrink 10-100x)."""

    def __init__(self, rect: Rect, before: np.ndarray, after: np.ndarray, text: str):
        self.rect, self.text = rect, text
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
    """One undo step (a whole stroke, a fill) holding a :class:`Patch` — never the whole image."""

    def __init__(self, doc: "Document", patch: Patch):
        super().__init__(patch.text)
        self.doc, self.patch = doc, patch
        self._applied = True   # the edit is already on the canvas when pushed

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
        return self.patch.nbytes()

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.doc._put_patch(self.patch.rect, self.patch.after)

    def undo(self) -> None:
        self.doc._put_patch(self.patch.rect, self.patch.before)


DEFAULT_UNDO_BUDGET = 256 << 20      # bytes of undo patches kept per document (Preferences)


class Document(QObject):
    labels_changed = Signal(object)      # rect (x0, y0, x1, y1) or None for everything
    layers_changed = Signal()            # photo/result/size/label set
    modified_changed = Signal(bool)
    history_trimmed = Signal(int)        # oldest undo steps dropped to stay within the budget

    def __init__(self, labelset: str | LabelSet = "camvid_11", size: tuple[int, int] = (480, 360), parent=None):
        super().__init__(parent)
        self.labelset = get_labelset(labelset) if isinstance(labelset, str) else labelset
        w, h = size
        self.labels = np.full((h, w), self.labelset.erase_index, dtype=np.uint8)
        self.photo: np.ndarray | None = None
        self.result: np.ndarray | None = None
        self.settings: dict = {}             # per-project settings (model, seed, prompt, ...), JSON values
        self.base_labels: np.ndarray | None = None   # labels when the photo was labelled (region regeneration)
        self.fill_hint = None                # (rect, mask, value) of the fill being announced
        self.path: Path | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.undo_budget = DEFAULT_UNDO_BUDGET
        self._cmds: list[Patch] = []              # the stack's patches, oldest first (plain Python objects)
        self._stroke: TileSnapshot | None = None
        self._stroke_last: tuple[float, float] | None = None
        self._stroke_args: tuple | None = None

    def _on_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    # ---- history with a byte budget -----------------------------------------------------------
    def _push(self, cmd: PatchCommand) -> None:
        idx = self.undo_stack.index()
        self.undo_stack.push(cmd)
        self._cmds = self._cmds[:idx] + [cmd.patch]      # pushing discards the redo branch, as Qt does
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

    def _rebuild_history(self, keep: list[Patch]) -> None:
        """Replace the stack by ``keep`` (the newest steps, all applied). The clean state survives only
        if it is among them; otherwise the document stays modified."""
        stack = self.undo_stack
        clean = stack.cleanIndex()
        drop = len(self._cmds) - len(keep)
        was_modified = not stack.isClean()
        stack.blockSignals(True)
        stack.clear()
        for patch in keep:
            stack.push(PatchCommand(self, patch))          # first redo() is skipped: nothing re-applied
        self._cmds = list(keep)
        if clean - drop >= 0 and not was_modified:
            stack.setClean()
        stack.blockSignals(False)
        if was_modified or clean - drop < 0:
            stack.resetClean()
        self.history_trimmed.emit(drop)

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

    # ---- whole-document operations -----------------------------------------------------------
    def set_labels(self, labels: np.ndarray, path: Path | None = None) -> None:
        if labels.max(initial=0) > 255:
            raise ValueError("label maps with more than 256 indices are not supported by the editor yet")
        self.labels = np.ascontiguousarray(labels.astype(np.uint8))
        self.path = path
        self.result = None
        if self.photo is not None and self.photo.shape[:2] != self.labels.shape:
            self.photo = None
        self.undo_stack.clear()
        self._cmds = []
        self.layers_changed.emit()
        self.labels_changed.emit(None)

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
        from ..io.project import Project

        return Project(self.labelset, self.labels.copy(), photo=self.photo, result=self.result,
                       settings=dict(self.settings))

    def apply_project(self, p, path: Path | None) -> None:
        """Replace the document by a loaded project (already fully read and checked)."""
        self.labelset = p.labelset
        self.labels = np.ascontiguousarray(p.labels.astype(np.uint8))
        self.photo, self.result = p.photo, p.result
        self.settings = dict(p.settings)
        self.path = path
        self.undo_stack.clear()
        self._cmds = []
        self.layers_changed.emit()
        self.labels_changed.emit(None)

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
        self.labels = np.full((h, w), self.labelset.erase_index, dtype=np.uint8)
        self.photo, self.result, self.base_labels = img, None, None
        self.path = None
        self.undo_stack.clear()
        self._cmds = []
        self.layers_changed.emit()
        self.labels_changed.emit(None)

    def replace_labels(self, labels: np.ndarray, text: str = "Replace labels") -> PatchCommand | None:
        """Replace the whole label map as one undoable edit (e.g. auto-labels)."""
        labels = np.asarray(labels)
        if labels.shape != self.labels.shape:
            raise ValueError(f"label map {labels.shape[1]}x{labels.shape[0]} does not match the canvas "
                             f"{self.size[0]}x{self.size[1]}")
        if labels.max(initial=0) >= self.labelset.num_indices:
            raise ValueError(f"label index {int(labels.max())} is beyond label set {self.labelset.name}")
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
    def _put_patch(self, r: Rect, patch: np.ndarray) -> None:
        self.labels[r[1]:r[3], r[0]:r[2]] = patch
        self.labels_changed.emit(r)

    def begin_stroke(self, x: float, y: float, diameter: int, value: int, shape: str = "round",
                     protect: np.ndarray | None = None) -> Rect | None:
        self._stroke = TileSnapshot(self.labels)
        self._stroke_args = (int(diameter), int(value), shape, protect)
        self._stroke_last = (x, y)
        h, w = self.labels.shape
        from .painting import clip_rect, dab_rect

        r = clip_rect(dab_rect(x, y, diameter), w, h)
        if r is not None:
            self._stroke.capture(r)
        r = dab(self.labels, x, y, diameter, value, shape, protect)
        if r is not None:
            self.labels_changed.emit(r)
        return r

    def continue_stroke(self, x: float, y: float) -> Rect | None:
        if self._stroke is None:
            return None
        d, v, shape, protect = self._stroke_args
        r = stroke_segment(self.labels, self._stroke_last, (x, y), d, v, shape, protect, self._stroke.capture)
        self._stroke_last = (x, y)
        if r is not None:
            self.labels_changed.emit(r)
        return r

    def end_stroke(self, text: str = "Brush stroke") -> PatchCommand | None:
        snap, self._stroke = self._stroke, None
        if snap is None or snap.rect is None:
            return None
        r = snap.rect
        before = snap.before_patch(r)
        after = self.labels[r[1]:r[3], r[0]:r[2]].copy()
        if np.array_equal(before, after):
            return None
        cmd = PatchCommand(self, Patch(r, before, after, text))
        self._push(cmd)
        return cmd

    def fill(self, x: int, y: int, value: int, contiguous: bool = True) -> PatchCommand | None:
        res = flood_fill(self.labels, x, y, value, contiguous)
        if res is None:
            return None
        r, mask, old = res
        after = self.labels[r[1]:r[3], r[0]:r[2]].copy()
        before = after.copy()
        before[mask] = old
        self.fill_hint = (r, mask, value)      # lets the canvas recolour just the filled pixels
        cmd = PatchCommand(self, Patch(r, before, after, "Fill" if contiguous else "Global fill"))
        self.labels_changed.emit(r)
        self._push(cmd)
        return cmd

    def fill_shape(self, rect, mask: np.ndarray, value: int, text: str,
                   protect: np.ndarray | None = None) -> PatchCommand | None:
        """Set ``mask`` (boolean, the size of ``rect``) to ``value``: one undoable patch (line, polygon,
        lasso, smart select). ``protect`` is the preserve-labels LUT."""
        if rect is None:
            return None
        x0, y0, x1, y1 = rect
        region = self.labels[y0:y1, x0:x1]
        m = np.asarray(mask, bool)
        if protect is not None:
            m = m & ~protect[region]
        m = m & (region != value)
        if not m.any():
            return None
        before = region.copy()
        region[m] = value
        cmd = PatchCommand(self, Patch((x0, y0, x1, y1), before, region.copy(), text))
        self.labels_changed.emit((x0, y0, x1, y1))
        self._push(cmd)
        return cmd

    def pick(self, x: int, y: int) -> int | None:
        h, w = self.labels.shape
        if 0 <= x < w and 0 <= y < h:
            return int(self.labels[y, x])
        return None

"""Main window: canvas, class palette, tools, Generate with a side-by-side result, live preview."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QActionGroup, QImage, QPixmap
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QSizePolicy, QSlider,
                               QSpinBox, QSplitter, QToolBar, QUndoView)

from engine.labels import LabelIOError, save_image_atomic

from .actions import make_actions
from .canvas.view import CanvasView
from .model.document import Document
from .services.engine_client import EngineClient, LiveScheduler
from .settings import Settings
from .widgets.palette import PalettePanel

APP_NAME = "Semantic Studio"


class ResultView(QLabel):
    """The generated image, scaled to fit, beside the canvas."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setStyleSheet("background:#202024;color:#aaa;")
        self.setText("Press Generate (Ctrl+Enter)")
        self._img: QImage | None = None

    def set_image(self, arr: np.ndarray | None) -> None:
        if arr is None:
            self._img = None
            self.setText("Press Generate (Ctrl+Enter)")
            return
        arr = np.ascontiguousarray(arr)
        self._img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], QImage.Format.Format_RGB888).copy()
        self._refresh()

    def _refresh(self) -> None:
        if self._img is not None:
            self.setPixmap(QPixmap.fromImage(self._img).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                               Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, ev) -> None:  # noqa: N802
        self._refresh()
        super().resizeEvent(ev)


class MainWindow(QMainWindow):
    generated = Signal(object)      # GenerateResult shown

    def __init__(self, labels_path: Path | None = None, model: str | None = None, client: EngineClient | None = None,
                 interactive_errors: bool = True, settings: Settings | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.model = model
        self.interactive_errors = interactive_errors
        self.last_error: str | None = None
        self.last_result = None
        self._explicit_jobs: set[int] = set()
        self._photo_jobs: dict[int, str] = {}     # auto-label / region jobs in flight
        self.doc = Document(parent=self)
        self.client = client or EngineClient(self.settings.get("device", "auto"))
        self.live = LiveScheduler(self.client, lambda: self.doc.labels, self.doc.labels_hash)
        self.live.model = model
        self.canvas = CanvasView(self.doc)
        self.result_view = ResultView()
        split = QSplitter()
        split.addWidget(self.canvas)
        split.addWidget(self.result_view)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 700])
        self.setCentralWidget(split)
        self.splitter = split
        self.palette_panel = PalettePanel(self.doc.labelset)
        dock = QDockWidget("Classes", self)
        dock.setObjectName("classes_dock")
        dock.setWidget(self.palette_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        hist = QDockWidget("History", self)
        hist.setObjectName("history_dock")
        hist.setWidget(QUndoView(self.doc.undo_stack))
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, hist)
        self.actions_ = make_actions(self)
        self._build_menus_and_toolbar()
        self._connect()
        self.status_pos = QLabel("")
        self.status_job = QLabel("")
        self.statusBar().addWidget(self.status_pos, 1)
        self.statusBar().addPermanentWidget(self.status_job)
        self.resize(1280, 760)
        self.canvas.set_brush_size(int(self.settings.get("brush_size", 24)))
        self.canvas.brush_size_changed.connect(lambda v: self.settings.set("brush_size", v))
        self.canvas.current_class = self.doc.labelset.index_of("road") if "road" in self.doc.labelset.names() else 0
        self.palette_panel.select(self.canvas.current_class)
        import os
        import time as _time

        from PySide6.QtCore import QTimer

        self.session = f"{os.getpid()}-{int(_time.time())}"
        self.canvas.installEventFilter(self)
        self.installEventFilter(self)
        self._autosaving = False
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave)
        from .widgets.preferences import apply_preferences

        apply_preferences(self)
        if labels_path is not None:
            self.open_file(labels_path)
        self._update_title()

    # ---- construction ------------------------------------------------------------------------
    def _build_menus_and_toolbar(self) -> None:
        a = self.actions_
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(a["open"])
        self.recent_menu = m.addMenu("Open &Recent")
        self._rebuild_recent()
        for k in ("save_project", "save_project_as", None, "new_from_photo", "open_labels", "open_photo", "save_labels",
                  "save_labels_as", "export_result", None, "preferences", None, "quit"):
            m.addSeparator() if k is None else m.addAction(a[k])
        m = mb.addMenu("&Edit")
        m.addAction(a["undo"])
        m.addAction(a["redo"])
        m = mb.addMenu("&Tools")
        self.tool_group = QActionGroup(self)
        for k in ("tool_brush", "tool_eraser", "tool_fill", "tool_picker", "tool_line", "tool_polygon", "tool_lasso",
                  "tool_select"):
            self.tool_group.addAction(a[k])
            m.addAction(a[k])
        a["tool_brush"].setChecked(True)
        m.addSeparator()
        for k in ("fill_global", "brush_square", "preserve_void", "brush_smaller", "brush_larger"):
            m.addAction(a[k])
        m = mb.addMenu("&View")
        for k in ("zoom_in", "zoom_out", "zoom_fit", "show_result"):
            m.addAction(a[k])
        m = mb.addMenu("&Generate")
        m.addAction(a["generate"])
        m.addAction(a["cancel_jobs"])
        m.addAction(a["live"])
        m.addSeparator()
        m.addAction(a["auto_label"])
        m.addAction(a["regen_region"])

        tb = QToolBar("Tools", self)
        tb.setObjectName("tools_toolbar")
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for k in ("open", "save_project", None, "undo", "redo", None, "tool_brush", "tool_eraser", "tool_fill",
                  "tool_picker", "tool_line", "tool_polygon", "tool_lasso", "tool_select", None, "fill_global",
                  "brush_square", "preserve_void"):
            tb.addSeparator() if k is None else tb.addAction(a[k])
        tb.addWidget(QLabel(" Size "))
        self.size_spin = QSpinBox(minimum=1, maximum=1024, value=self.canvas.brush_size)
        self.size_spin.setToolTip("Brush diameter in pixels ([ and ])")
        tb.addWidget(self.size_spin)
        tb.addWidget(QLabel(" Labels "))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=100)
        self.opacity_slider.setFixedWidth(90)
        self.opacity_slider.setToolTip("Label layer opacity")
        tb.addWidget(self.opacity_slider)
        self.addToolBar(tb)
        self.toolbar = tb
        gb = QToolBar("Generate", self)
        gb.setObjectName("generate_toolbar")
        gb.setIconSize(QSize(18, 18))
        gb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for k in ("show_result", "live", "generate", "auto_label", "regen_region", "cancel_jobs"):
            gb.addAction(a[k])
        self.addToolBar(gb)

    def _connect(self) -> None:
        a, c, d = self.actions_, self.canvas, self.doc
        a["open"].triggered.connect(lambda: self.open_file())
        a["save_project"].triggered.connect(lambda: self.save_project())
        a["save_project_as"].triggered.connect(lambda: self.save_project(ask=True))
        a["open_labels"].triggered.connect(lambda: self.open_labels())
        a["open_photo"].triggered.connect(lambda: self.open_photo())
        a["new_from_photo"].triggered.connect(lambda: self.new_from_photo())
        a["auto_label"].triggered.connect(self.auto_label)
        a["regen_region"].triggered.connect(self.regenerate_region)
        a["save_labels"].triggered.connect(lambda: self.save_labels())
        a["save_labels_as"].triggered.connect(lambda: self.save_labels(ask=True))
        a["export_result"].triggered.connect(lambda: self.export_result())
        a["quit"].triggered.connect(self.close)
        a["preferences"].triggered.connect(lambda: self.preferences())
        a["undo"].triggered.connect(d.undo_stack.undo)
        a["redo"].triggered.connect(d.undo_stack.redo)
        d.undo_stack.canUndoChanged.connect(a["undo"].setEnabled)
        d.undo_stack.canRedoChanged.connect(a["redo"].setEnabled)
        a["undo"].setEnabled(False)
        a["redo"].setEnabled(False)
        for k in ("brush", "eraser", "fill", "picker", "line", "polygon", "lasso", "select"):
            a[f"tool_{k}"].triggered.connect(lambda _=False, k=k: c.set_tool(k))
        a["brush_square"].toggled.connect(lambda on: (setattr(c, "brush_shape", "square" if on else "round"),
                                                      c.update()))
        a["preserve_void"].toggled.connect(lambda on: setattr(c, "preserve", "void" if on else None))
        c.select_requested.connect(self.smart_select)
        c.tool_changed.connect(lambda t: a[f"tool_{t}"].setChecked(True))
        a["fill_global"].toggled.connect(lambda on: setattr(c, "fill_contiguous", not on))
        a["brush_smaller"].triggered.connect(lambda: c.set_brush_size(max(1, int(c.brush_size / 1.2))))
        a["brush_larger"].triggered.connect(lambda: c.set_brush_size(int(c.brush_size * 1.2) + 1))
        self.size_spin.valueChanged.connect(c.set_brush_size)
        c.brush_size_changed.connect(lambda v: (self.size_spin.blockSignals(True), self.size_spin.setValue(v),
                                                self.size_spin.blockSignals(False)))
        self.opacity_slider.valueChanged.connect(lambda v: (setattr(c, "label_opacity", v / 100), c.update()))
        a["zoom_in"].triggered.connect(lambda: c.zoom_at(1.25))
        a["zoom_out"].triggered.connect(lambda: c.zoom_at(0.8))
        a["zoom_fit"].triggered.connect(c.fit)
        a["show_result"].toggled.connect(self._toggle_result_layer)
        a["generate"].triggered.connect(self.generate)
        a["cancel_jobs"].triggered.connect(self.client.worker.cancel_all)
        a["cancel_jobs"].setEnabled(False)
        self.client.busy_changed.connect(a["cancel_jobs"].setEnabled)
        a["live"].toggled.connect(self.live.set_enabled)
        self.palette_panel.class_chosen.connect(lambda i: setattr(c, "current_class", i))
        c.picked.connect(self.palette_panel.select)
        c.cursor_moved.connect(self._show_pos)
        d.labels_changed.connect(lambda _r: self.live.poke())
        d.modified_changed.connect(lambda _m: self._update_title())
        self.client.result.connect(self._on_result)
        self.client.error.connect(self._on_error)
        self.live.failed.connect(self._on_live_failed)
        self.client.event.connect(self._on_event)

    # ---- status ------------------------------------------------------------------------------
    def _update_title(self) -> None:
        name = self.doc.path.name if self.doc.path else "untitled"
        self.setWindowTitle(f"{name}{' *' if self.doc.modified else ''} — {APP_NAME}")

    def _show_pos(self, x: int, y: int) -> None:
        v = self.doc.pick(x, y)
        name = self.doc.labelset.classes[v].name if v is not None and v < len(self.doc.labelset.classes) else ""
        self.status_pos.setText(f"{x}, {y}  {name}" if v is not None else "")

    def _on_event(self, ev) -> None:
        kind = self._photo_jobs.pop(ev.job_id, None) if ev.kind in ("result", "error", "cancelled") else None
        if kind is not None and ev.kind == "result":
            self._photo_job_done(kind, ev.result)
        elif kind is not None and ev.kind == "error":
            self.show_error({"auto_label": "Auto-label failed", "select": "Smart select failed"}.get(
                kind, "Region regeneration failed"), ev.error or "unknown engine error")
        if ev.kind in ("started", "progress") and ev.stage:
            self.status_job.setText(ev.stage + "…")
        elif ev.kind == "cancelled":
            self.status_job.setText("")

    def show_error(self, title: str, msg: str) -> None:
        """Errors never lose the document: a dialog, nothing else changes."""
        self.last_error = msg
        self.status_job.setText(f"{title}: {msg}")
        if self.interactive_errors:
            box = QMessageBox(QMessageBox.Icon.Warning, title, msg, QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.open()

    # ---- file operations ---------------------------------------------------------------------
    def _ask_path(self, save: bool, caption: str, filt: str, default: str = "") -> str | None:
        start = str(Path(self.settings.get("last_dir", "")) / default) if self.settings.get("last_dir") else default
        fn = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        path, _ = fn(self, caption, start, filt)
        if path:
            self.settings.set("last_dir", str(Path(path).parent))
        return path or None

    def _guarded(self, title: str, fn) -> bool:
        """Run a file operation; a failure becomes a dialog and leaves the document untouched."""
        try:
            fn()
        except (LabelIOError, ValueError, OSError) as e:
            self.show_error(title, str(e))
            return False
        return True

    def open_file(self, path: Path | str | None = None) -> bool:
        """A project (.semstudio) or a label map, by extension."""
        from .io.project import SUFFIX

        path = path or self._ask_path(False, "Open", f"Projects and label maps (*{SUFFIX} *.png *.tif *.bmp);;"
                                      f"Projects (*{SUFFIX});;Label maps (*.png *.tif *.bmp)")
        if not path:
            return False
        if Path(path).suffix.lower() == SUFFIX:
            return self.open_project(path)
        return self.open_labels(path)

    def open_project(self, path: Path | str) -> bool:
        from .io.project import ProjectError

        try:
            self.doc.open_project(path)
        except (ProjectError, OSError) as e:
            self.show_error("Cannot open project", str(e))
            return False
        self.palette_panel.set_labelset(self.doc.labelset)
        self.result_view.set_image(self.doc.result)
        self.canvas.fit()
        self._add_recent(path)
        self._update_title()
        return True

    def save_project(self, path: Path | str | None = None, ask: bool = False) -> bool:
        from .io.project import SUFFIX

        cur = self.doc.path if self.doc.path is not None and self.doc.path.suffix.lower() == SUFFIX else None
        if path is None and (ask or cur is None):
            stem = self.doc.path.stem if self.doc.path else "scene"
            path = self._ask_path(True, "Save project", f"Semantic Studio project (*{SUFFIX})", stem + SUFFIX)
            if not path:
                return False
        path = Path(path or cur)
        if path.suffix.lower() != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
        if not self._guarded("Cannot save project", lambda: self.doc.save_project(path)):
            return False
        self._add_recent(path)
        self._update_title()
        return True

    def preferences(self, accept_with=None):
        """The Preferences dialog; ``accept_with(dialog)`` fills it and accepts (tests)."""
        from .widgets.preferences import PreferencesDialog, apply_preferences

        dlg = PreferencesDialog(self.settings, self.actions_, self)
        if accept_with is not None:
            accept_with(dlg)
            dlg.accept()
            ok = dlg.result() == dlg.DialogCode.Accepted
        else:
            ok = dlg.exec() == dlg.DialogCode.Accepted
        if ok:
            apply_preferences(self)
        return dlg

    # ---- autosave, recovery, recent files ----------------------------------------------------
    def set_autosave_interval(self, seconds: int) -> None:
        self.autosave_timer.stop()
        if seconds > 0:
            self.autosave_timer.start(int(seconds) * 1000)

    def autosave(self, wait: bool = False) -> bool:
        """Write the document to the autosave folder (PNG encoding off the UI thread) when modified."""
        import threading

        from .io.project import write_autosave

        if not self.doc.modified or self._autosaving:
            return False
        proj, session, original = self.doc.to_project(), self.session, self.doc.path
        self._autosaving = True

        def run():
            try:
                write_autosave(proj, session, original)
            except Exception as e:  # noqa: BLE001 - autosave must never take the editor down
                self.last_error = f"autosave failed: {e}"
            finally:
                self._autosaving = False
        t = threading.Thread(target=run, name="autosave", daemon=True)
        t.start()
        if wait:
            t.join()
        return True

    def offer_recovery(self, accept: bool | None = None) -> bool:
        """After a crash: offer the newest autosave left by a dead editor. ``accept`` answers for tests."""
        from datetime import datetime

        from .io.project import clear_autosave, load_project, recoverable

        found = recoverable()
        if not found:
            return False
        e = found[0]
        when = datetime.fromtimestamp(e["mtime"]).strftime("%Y-%m-%d %H:%M")
        if accept is None:
            if not self.interactive_errors:
                return False
            what = f" of {Path(e['original']).name}" if e.get("original") else ""
            r = QMessageBox.question(self, APP_NAME, f"Semantic Studio did not close properly. Recover the unsaved "
                                     f"work{what} autosaved at {when}?")
            accept = r == QMessageBox.StandardButton.Yes
        if accept:
            from .io.project import ProjectError

            try:
                p = load_project(e["path"])
            except ProjectError as err:
                self.show_error("Cannot recover", str(err))
                return False
            self.doc.apply_project(p, None)
            self.doc.undo_stack.resetClean()            # recovered work is unsaved until the user saves it
            self.palette_panel.set_labelset(self.doc.labelset)
            self.result_view.set_image(self.doc.result)
            self._update_title()
        for f in found:
            clear_autosave(f["session"])
        return bool(accept)

    def _add_recent(self, path) -> None:
        p = str(Path(path).resolve())
        recent = [r for r in self.settings.get("recent", []) if r != p]
        self.settings.set("recent", [p] + recent[:9])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        m = self.recent_menu
        m.clear()
        recent = self.settings.get("recent", [])
        for r in recent:
            act = m.addAction(Path(r).name)
            act.setToolTip(r)
            act.triggered.connect(lambda _=False, r=r: self.open_file(r))
        m.setEnabled(bool(recent))

    # ---- photo workflow: auto-label, class swap, regenerate the changed region only --------------
    def new_from_photo(self, path: Path | str | None = None) -> bool:
        path = path or self._ask_path(False, "New from photo", "Images (*.png *.jpg *.jpeg *.bmp *.tif)")
        if not path or not self._guarded("Cannot open photo", lambda: self.doc.new_from_photo(path)):
            return False
        self.result_view.set_image(None)
        self.opacity_slider.setValue(50)
        self.canvas.fit()
        self._update_title()
        return True

    def auto_label(self) -> int | None:
        from engine.api import AutoLabelRequest

        if self.doc.photo is None:
            self.show_error("Nothing to label", "Open a photo first (File > New from Photo).")
            return None
        job = self.client.submit(AutoLabelRequest(photo=self.doc.photo.copy()))
        self._photo_jobs[job] = "auto_label"
        return job

    def regenerate_region(self, blend: str = "feather") -> int | None:
        from engine.api import RegionRequest

        if self.doc.photo is None:
            self.show_error("No photo", "Region regeneration changes a photo: open one first.")
            return None
        mask = self.doc.changed_since_base()
        if mask is None or not mask.any():
            self.show_error("Nothing changed", "Change some classes first: the region to regenerate is where the "
                            "labels differ from the photo's labels.")
            return None
        job = self.client.submit(RegionRequest(photo=self.doc.photo.copy(), labels=self.doc.labels.copy(),
                                               mask=mask, model=self.model, seed=int(self.doc.settings.get("seed", 0)),
                                               blend=blend))
        self._photo_jobs[job] = "region"
        return job

    def smart_select(self, rect) -> int | None:
        """GrabCut in the dragged rectangle of the photo (on the worker); fills with the current class."""
        from engine.api import CallableRequest

        from .tools.shapes import smart_select

        if self.doc.photo is None:
            self.show_error("Smart select needs a photo", "Open a photo first (File > New from Photo).")
            return None
        photo = self.doc.photo.copy()
        self._select_value = self.canvas.current_class
        job = self.client.submit(CallableRequest(fn=lambda ctx: smart_select(photo, rect), name="smart select"))
        self._photo_jobs[job] = "select"
        return job

    def _photo_job_done(self, kind: str, result) -> None:
        if kind == "select":
            if result is None:
                self.status_job.setText("smart select found nothing in the rectangle")
            else:
                self.doc.fill_shape(result[0], result[1], self._select_value, "Smart select", self.canvas._protect())
            return
        if kind == "auto_label":
            self._guarded("Auto-label failed", lambda: self.doc.replace_labels(result, "Auto-label photo"))
            self.doc.base_labels = self.doc.labels.copy()
            self.status_job.setText("photo labelled: change classes, then Regenerate Changed Region")
        else:
            self.doc.set_result(result.image)
            self.result_view.set_image(result.image)
            self.actions_["show_result"].setChecked(True)
            self.status_job.setText(f"regenerated {100 * result.region.mean():.1f}% of the photo; the rest is "
                                    "untouched (hold Tab for before/after)")

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        """Tab held over the canvas or the window: before/after (Tab would otherwise move the focus)."""
        from PySide6.QtCore import QEvent

        if ev.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and ev.key() == Qt.Key.Key_Tab \
                and self.doc.result is not None and self.doc.photo is not None:
            if not ev.isAutoRepeat():
                self._before_after(ev.type() == QEvent.Type.KeyPress)
            return True
        return super().eventFilter(obj, ev)

    def _before_after(self, before: bool) -> None:
        """Tab held: the canvas shows the photo as it was; released: the result again."""
        if before:
            self._result_was_shown = self.canvas.show_result
            self.canvas.show_result = False
        else:
            self.canvas.show_result = getattr(self, "_result_was_shown", True)
        self.canvas.update()

    def open_labels(self, path: Path | str | None = None) -> bool:
        path = path or self._ask_path(False, "Open label map", "Label maps (*.png *.tif *.bmp)")
        if not path or not self._guarded("Cannot open label map", lambda: self.doc.open_labels(path)):
            return False
        self._add_recent(path)
        self.result_view.set_image(None)
        self.canvas.fit()
        self._update_title()
        return True

    def open_photo(self, path: Path | str | None = None) -> bool:
        path = path or self._ask_path(False, "Open photo", "Images (*.png *.jpg *.jpeg *.bmp *.tif)")
        if not path or not self._guarded("Cannot open photo", lambda: self.doc.open_photo(path)):
            return False
        self.opacity_slider.setValue(50)
        return True

    def save_labels(self, path: Path | str | None = None, ask: bool = False) -> bool:
        if path is None and (ask or self.doc.path is None):
            path = self._ask_path(True, "Save label map", "Indexed PNG (*.png)",
                                  self.doc.path.name if self.doc.path else "labels.png")
            if not path:
                return False
        if not self._guarded("Cannot save label map", lambda: self.doc.save_labels(path)):
            return False
        self._update_title()
        return True

    def export_result(self, path: Path | str | None = None) -> bool:
        if self.doc.result is None:
            self.show_error("Nothing to export", "Generate an image first.")
            return False
        path = path or self._ask_path(True, "Export result", "PNG (*.png)", "result.png")
        if not path:
            return False
        from PIL import Image

        return self._guarded("Cannot export result",
                             lambda: save_image_atomic(Image.fromarray(self.doc.result), path))

    # ---- generation --------------------------------------------------------------------------
    def generate(self) -> int:
        self.status_job.setText("queued…")
        job = self.client.generate(self.doc.labels, model=self.model)
        self._explicit_jobs.add(job)
        return job

    def _on_result(self, ev, res) -> None:
        self._explicit_jobs.discard(ev.job_id)
        self.last_result = res
        self.doc.set_result(res.image)
        self.result_view.set_image(res.image)
        self.status_job.setText(f"{res.model_name}: {res.size[0]}x{res.size[1]} in {res.seconds * 1000:.0f} ms "
                                f"on {res.device}" + "".join(f" — {n}" for n in getattr(res, "notes", [])))
        self.generated.emit(res)

    def _on_error(self, job_id: int, msg: str) -> None:
        if job_id in self._explicit_jobs:
            self._explicit_jobs.discard(job_id)
            self.show_error("Generation failed", msg)

    def _on_live_failed(self, msg: str) -> None:
        self.actions_["live"].setChecked(False)
        self.show_error("Live preview stopped", msg)

    def _toggle_result_layer(self, on: bool) -> None:
        self.canvas.show_result = on
        self.opacity_slider.setValue(0 if on else 100)
        self.canvas.update()

    # ---- lifecycle ---------------------------------------------------------------------------
    def closeEvent(self, ev) -> None:  # noqa: N802
        if self.doc.modified and self.interactive_errors:
            r = QMessageBox.question(self, APP_NAME, "The project has unsaved changes. Save before closing?",
                                     QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                                     | QMessageBox.StandardButton.Cancel)
            if r == QMessageBox.StandardButton.Cancel:
                ev.ignore()
                return
            if r == QMessageBox.StandardButton.Save and not self.save_project():
                ev.ignore()
                return
        from .io.project import clear_autosave

        self.autosave_timer.stop()
        clear_autosave(self.session)                   # a normal close: nothing to recover
        self.client.shutdown()
        super().closeEvent(ev)

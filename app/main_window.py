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
        self.last_info: str | None = None
        self.last_result = None
        self._explicit_jobs: set[int] = set()
        self._photo_jobs: dict[int, str] = {}     # auto-label / region jobs in flight
        self.doc = Document(parent=self)
        self.client = client or EngineClient(self.settings.get("device", "auto"))
        self.live = LiveScheduler(self.client, lambda: self.doc.labels, self.doc.labels_hash,
                                  get_inputs=self._generation_inputs)
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
        self.palette_panel = PalettePanel(self.doc.labelset,
                                          favourites=self.settings.get("favourites", {}).get(self.doc.labelset.name))
        from .widgets.jobs import JobsPanel
        from .widgets.layers import LayersPanel
        from .widgets.prompt import PromptPanel
        from .widgets.style import StylePanel
        from .widgets.stylize import StylizePanel
        from .widgets.timeline import TimelinePanel

        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self._dock("Classes", "classes", self.palette_panel, left)
        self.layers_panel = LayersPanel(self.doc)
        self._dock("Layers", "layers", self.layers_panel, left)
        self.style_panel = StylePanel(self.doc)
        self.stylize_panel = StylizePanel(user_styles=self.settings.get("style_images", []))
        self.prompt_panel = PromptPanel(self.doc, history=self.settings.get("prompt_history", []))
        self.jobs_panel = JobsPanel(self.client)
        self.side_docks = {k: self._dock(k.capitalize(), k, w, right) for k, w in (
            ("style", self.style_panel), ("stylize", self.stylize_panel), ("prompt", self.prompt_panel),
            ("jobs", self.jobs_panel))}
        self.tabifyDockWidget(self.side_docks["style"], self.side_docks["stylize"])
        self.tabifyDockWidget(self.side_docks["stylize"], self.side_docks["prompt"])
        self.side_docks["style"].raise_()
        self.timeline_panel = TimelinePanel(self.doc, self.client, self.canvas)
        self.timeline_panel.model = model
        self._dock("Timeline", "timeline", self.timeline_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("History", "history", QUndoView(self.doc.undo_stack), left)
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
        self._refresh_model_card()
        if labels_path is not None:
            self.open_file(labels_path)
        self._update_title()

    # ---- construction ------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{name}_dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus_and_toolbar(self) -> None:
        a = self.actions_
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(a["open"])
        self.recent_menu = m.addMenu("Open &Recent")
        self._rebuild_recent()
        for k in ("save_project", "save_project_as", None, "new_from_photo", "open_labels", "open_photo", "save_labels",
                  "save_labels_as", "export_result", None, "convert_labelset", None, "models", "preferences", None,
                  "quit"):
            m.addSeparator() if k is None else m.addAction(a[k])
        m = mb.addMenu("&Edit")
        m.addAction(a["undo"])
        m.addAction(a["redo"])
        m = mb.addMenu("&Tools")
        self.tool_group = QActionGroup(self)
        for k in ("tool_brush", "tool_eraser", "tool_fill", "tool_picker", "tool_line", "tool_polygon", "tool_lasso",
                  "tool_select", "tool_sketch", "tool_merge", "tool_split"):
            self.tool_group.addAction(a[k])
            m.addAction(a[k])
        a["tool_brush"].setChecked(True)
        m.addSeparator()
        for k in ("new_instance", None, "fill_global", "brush_square", "preserve_void", "preserve_class",
                  "brush_smaller", "brush_larger", None, "favourite"):
            m.addSeparator() if k is None else m.addAction(a[k])
        fm = m.addMenu("Favourite &Classes")
        for n in range(1, 10):
            fm.addAction(a[f"favourite_{n}"])
            self.addAction(a[f"favourite_{n}"])          # keys 1-9 work without opening the menu
        m = mb.addMenu("&Layer")
        for k in ("layer_labels", "layer_instances", "layer_edges", None, "show_instances", "show_result"):
            m.addSeparator() if k is None else m.addAction(a[k])
        m = mb.addMenu("&View")
        for k in ("zoom_in", "zoom_out", "zoom_fit"):
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
                  "tool_picker", "tool_line", "tool_polygon", "tool_lasso", "tool_select", "tool_sketch", None,
                  "new_instance", "tool_merge", "tool_split", None, "fill_global", "brush_square", "preserve_void"):
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
        for k in ("brush", "eraser", "fill", "picker", "line", "polygon", "lasso", "select", "merge", "split"):
            a[f"tool_{k}"].triggered.connect(lambda _=False, k=k: c.set_tool(k))
        a["tool_sketch"].triggered.connect(self.sketch_brush)
        a["brush_square"].toggled.connect(lambda on: (setattr(c, "brush_shape", "square" if on else "round"),
                                                      c.update()))
        a["preserve_void"].toggled.connect(lambda on: self._set_preserve("void", on))
        a["preserve_class"].toggled.connect(lambda on: self._set_preserve("class", on))
        c.select_requested.connect(self.smart_select)
        c.tool_changed.connect(self._on_tool_changed)
        c.message.connect(lambda msg: self.statusBar().showMessage(msg, 6000))
        c.instance_changed.connect(self._on_instance)
        a["new_instance"].triggered.connect(self.new_instance)
        a["show_instances"].toggled.connect(lambda on: d.set_layer_prop("instances", visible=on))
        for k in ("labels", "instances", "edges"):
            a[f"layer_{k}"].triggered.connect(lambda _=False, k=k: self.layers_panel.set_active(k))
        self.layers_panel.active_changed.connect(self._on_active_layer)
        d.layer_props_changed.connect(self._sync_layer_actions)
        a["favourite"].triggered.connect(lambda: self.palette_panel.toggle_favourite(c.current_class))
        self.palette_panel.favourites_changed.connect(self._save_favourites)
        for n in range(1, 10):
            a[f"favourite_{n}"].triggered.connect(lambda _=False, n=n: self.palette_panel.choose_favourite(n))
        a["convert_labelset"].triggered.connect(lambda: self.convert_labelset())
        a["models"].triggered.connect(lambda: self.model_manager())
        self.style_panel.changed.connect(self.live.poke)
        self.style_panel.swatches_requested.connect(self.instance_swatches)
        self.jobs_panel.apply_result.connect(self.apply_result)
        self.stylize_panel.stylize_requested.connect(self.stylize)
        self.timeline_panel.frame_result.connect(lambda img: img is not None and self.apply_result(img))
        self.prompt_panel.edit_requested.connect(self.text_edit)
        self.prompt_panel.history_changed.connect(lambda h: self.settings.set("prompt_history", h))
        self.stylize_panel.user_styles_changed.connect(lambda paths: self.settings.set("style_images", paths))
        a["fill_global"].toggled.connect(lambda on: setattr(c, "fill_contiguous", not on))
        a["brush_smaller"].triggered.connect(lambda: c.set_brush_size(max(1, int(c.brush_size / 1.2))))
        a["brush_larger"].triggered.connect(lambda: c.set_brush_size(int(c.brush_size * 1.2) + 1))
        self.size_spin.valueChanged.connect(c.set_brush_size)
        c.brush_size_changed.connect(lambda v: (self.size_spin.blockSignals(True), self.size_spin.setValue(v),
                                                self.size_spin.blockSignals(False)))
        self.opacity_slider.valueChanged.connect(lambda v: d.set_layer_prop("labels", opacity=v / 100))
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
        d.layers_changed.connect(lambda: self.palette_panel.labelset is not d.labelset and self._labelset_changed())
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
        sw = getattr(self, "_swatch_jobs", {})
        if ev.job_id in sw and ev.kind in ("result", "error", "cancelled"):
            iid = sw.pop(ev.job_id)
            if ev.kind == "result":
                self.style_panel.show_swatches(iid, ev.result)
            elif ev.kind == "error":
                self.show_error("Swatches failed", ev.error or "unknown engine error")
        kind = self._photo_jobs.pop(ev.job_id, None) if ev.kind in ("result", "error", "cancelled") else None
        if kind is not None and ev.kind == "result":
            self._photo_job_done(kind, ev.result)
        elif kind is not None and ev.kind in ("error", "cancelled") and kind == "text":
            self.prompt_panel.understood.setText("cancelled" if ev.kind == "cancelled" else f"failed: {ev.error}")
        if kind is not None and ev.kind == "error":
            self.show_error({"auto_label": "Auto-label failed", "select": "Smart select failed",
                             "stylize": "Stylization failed", "text": "Text edit failed"}.get(
                kind, "Region regeneration failed"), ev.error or "unknown engine error",
                ev.result if isinstance(ev.result, str) else None)
        if ev.kind in ("started", "progress") and ev.stage:
            self.status_job.setText(ev.stage + "…")
        elif ev.kind == "cancelled":
            self.status_job.setText("")

    def show_error(self, title: str, msg: str, details: str | None = None) -> None:
        """Errors never lose the document: a dialog, nothing else changes."""
        self.last_error = msg
        self.status_job.setText(f"{title}: {msg}")
        if self.interactive_errors:
            # a non-modal notification: editing goes on; long engine messages keep their details
            first, _, rest = msg.partition("\n")
            box = QMessageBox(QMessageBox.Icon.Warning, title, first, QMessageBox.StandardButton.Ok, self)
            more = "\n".join(x for x in (rest.strip(), (details or "").strip()) if x)
            if more:
                box.setDetailedText(more)
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()

    # ---- file operations ---------------------------------------------------------------------
    def _ask_path(self, save: bool, caption: str, filt: str, default: str = "", with_filter: bool = False):
        start = str(Path(self.settings.get("last_dir", "")) / default) if self.settings.get("last_dir") else default
        fn = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        path, chosen = fn(self, caption, start, filt)
        if path:
            self.settings.set("last_dir", str(Path(path).parent))
        return (path or None, chosen) if with_filter else (path or None)

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
        job = self.client.submit(CallableRequest(fn=lambda ctx: smart_select(photo, rect), name="smart select"))
        self._photo_jobs[job] = "select"
        return job

    def _photo_job_done(self, kind: str, result) -> None:
        if kind == "text":
            self.apply_result(result.image)
            self.actions_["show_result"].setChecked(True)
            self.prompt_panel.show_understood(result)
            self.status_job.setText(f"edited: {result.understood.summary()}")
            self.edited = result
            return
        if kind == "stylize":
            self.apply_result(result.image)
            self.actions_["show_result"].setChecked(True)
            self.status_job.setText(f"stylized in {result.info.get('seconds', 0):.1f} s "
                                    f"(smoothing {result.info.get('smooth')})")
            self.stylized = result
            return
        if kind == "select":
            if result is None:
                self.status_job.setText("smart select found nothing in the rectangle")
            else:
                self.canvas.fill_mask(result[0], result[1], "Smart select")
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

    def open_labels(self, path: Path | str | None = None, fmt: str = "auto") -> bool:
        """Import a label file (formats: engine.labels.formats.IMPORT_FORMATS; the file dialog's filter
        picks one). A file that does not fit the current label set is tried against the others."""
        from engine.labels.formats import IMPORT_FORMATS

        if path is None:
            pats = {"labelme": "*.json", "auto": "*.png *.tif *.bmp *.json"}
            filters = [f"{IMPORT_FORMATS[k]} ({pats.get(k, '*.png *.tif *.bmp')})" for k in IMPORT_FORMATS]
            path, chosen = self._ask_path(False, "Import label map", ";;".join(filters), with_filter=True)
            if not path:
                return False
            fmt = list(IMPORT_FORMATS)[filters.index(chosen)] if chosen in filters else "auto"
        try:
            ls, got = self._import_labels(Path(path), fmt)
            keep_path = Path(path) if Path(path).suffix.lower() == ".png" and fmt in ("auto", "indexed") \
                and got.instances is None and ls is self.doc.labelset else None
            self.doc.set_labels(got.labels, keep_path, got.instances, labelset=ls)
        except (LabelIOError, ValueError, OSError) as e:
            self.show_error("Cannot open label map", str(e))
            return False
        self._add_recent(path)
        self.result_view.set_image(None)
        self.canvas.fit()
        self._update_title()
        if got.notes:
            self.show_info("Imported with notes", "\n".join(got.notes))
        return True

    def _import_labels(self, path: Path, fmt: str):
        """(label set, Imported): the current set first, then the one the file name suggests, then the rest."""
        from engine.labels import available_labelsets, get_labelset
        from engine.labels.formats import import_labels

        try:
            return self.doc.labelset, import_labels(path, self.doc.labelset, fmt)
        except LabelIOError as first:
            hint = ["cityscapes_35"] if ("labelIds" in path.name or "instanceIds" in path.name) else []
            for name in hint + [n for n in available_labelsets() if n not in hint]:
                ls = get_labelset(name)
                if ls.name == self.doc.labelset.name:
                    continue
                try:
                    got = import_labels(path, ls, fmt)
                except LabelIOError:
                    continue
                got.notes.insert(0, f"{path.name} does not fit {self.doc.labelset.title}; it was read as "
                                    f"{ls.title} (Edit > Convert Label Set maps it to another set)")
                return ls, got
            raise first

    def show_info(self, title: str, msg: str) -> None:
        self.last_info = msg
        self.statusBar().showMessage(msg.splitlines()[0], 10000)
        if self.interactive_errors:
            box = QMessageBox(QMessageBox.Icon.Information, title, msg, QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.open()

    def open_photo(self, path: Path | str | None = None) -> bool:
        path = path or self._ask_path(False, "Open photo", "Images (*.png *.jpg *.jpeg *.bmp *.tif)")
        if not path or not self._guarded("Cannot open photo", lambda: self.doc.open_photo(path)):
            return False
        self.opacity_slider.setValue(50)
        return True

    def save_labels(self, path: Path | str | None = None, ask: bool = False, fmt: str = "indexed") -> bool:
        """Export the labels (or instances, edges) in ``fmt`` (engine.labels.formats.EXPORT_FORMATS; the
        dialog's filter picks one). Only the indexed PNG becomes the document's file."""
        from engine.labels.formats import EXPORT_FORMATS, export_labels

        if path is None and (ask or self.doc.path is None or self.doc.path.suffix.lower() != ".png"):
            filters = [f"{title} (*{ext})" for title, ext in EXPORT_FORMATS.values()]
            path, chosen = self._ask_path(True, "Export label map", ";;".join(filters),
                                          self.doc.path.stem + ".png" if self.doc.path else "labels.png",
                                          with_filter=True)
            if not path:
                return False
            fmt = list(EXPORT_FORMATS)[filters.index(chosen)] if chosen in filters else "indexed"
        if fmt == "indexed":
            ok = self._guarded("Cannot save label map", lambda: self.doc.save_labels(path))
        else:
            d = self.doc
            ok = self._guarded("Cannot export", lambda: export_labels(path, fmt, d.labels, d.labelset, d.instances,
                                                                      d.edges))
        if ok:
            self.statusBar().showMessage(f"exported {EXPORT_FORMATS[fmt][0].lower()} to {Path(path).name}", 6000)
        self._update_title()
        return ok

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
    def _generation_inputs(self) -> tuple[dict, str]:
        """Seed, instances and style controls of the next generation, and their fingerprint."""
        seed, controls = self.style_panel.controls()
        inst = self.doc.instances
        key = self.style_panel.key() + ("" if inst is None else str(hash(inst.tobytes())))
        return {"seed": seed, "instances": inst, "controls": controls}, key

    def generate(self) -> int:
        self.status_job.setText("queued…")
        kwargs, _key = self._generation_inputs()
        job = self.client.generate(self.doc.labels, model=self.model, **kwargs)
        self._explicit_jobs.add(job)
        return job

    def _refresh_model_card(self) -> dict:
        """Read the current model's card (a small JSON file) and show the controls it supports."""
        from engine.cards import ModelError, read_card
        from engine.registry import load_clusters, resolve_model

        card, clusters = {}, None
        try:
            d = resolve_model(self.model)
            if d.is_dir():
                card = read_card(d)
                f = card.get("files", {}).get("clusters")
                if f:
                    clusters = load_clusters(d / f["path"])
        except (ModelError, OSError, KeyError, ValueError) as e:
            self.status_job.setText(f"model card: {e}")
        self.model_card = card
        self.style_panel.set_card(card, clusters)
        return card

    def stylize(self, style: np.ndarray, mode: str = "global", smooth: str = "exact") -> int | None:
        """PhotoWCT + smoothing of the current result (or the photo) on the engine thread; the output
        becomes a new result. Region-wise uses the document's labels where they are street classes."""
        from engine.api import StylizeRequest

        content = self.doc.result if self.doc.result is not None else self.doc.photo
        if content is None:
            self.show_error("Nothing to stylize", "Generate an image (or open a photo) first.")
            return None
        c_lab = None
        if mode == "regions" and self.doc.labelset.name == "camvid_11":
            from engine.labels.maps import resize_nearest

            c_lab = resize_nearest(self.doc.labels, (content.shape[1], content.shape[0]))
        job = self.client.submit(StylizeRequest(content=content.copy(), style=style, content_labels=c_lab,
                                                smooth=smooth, auto_labels=mode == "regions"))
        self._photo_jobs[job] = "stylize"
        self.status_job.setText("stylizing…")
        return job

    def text_edit(self, fields: dict) -> int | None:
        """A SIMGAN edit of the current result (or the photo) on the engine thread; a new result."""
        from engine.api import TextEditRequest

        image = self.doc.result if self.doc.result is not None else self.doc.photo
        if image is None:
            self.show_error("Nothing to edit", "Generate an image (or open a photo) first.")
            self.prompt_panel.understood.setText("")
            return None
        mask, mask_class, labels = None, None, None
        limit = fields.get("limit")
        h, w = image.shape[:2]
        if limit == "changed":
            m = self.doc.changed_since_base()
            if m is not None:
                from engine.labels.maps import resize_nearest

                mask = resize_nearest(m.astype(np.uint8), (w, h)) > 0
        elif limit and limit.startswith("class:"):
            mask_class = limit[6:]
            if self.doc.labelset.name == "camvid_11":        # the document's labels say where the class is
                from engine.labels.maps import resize_nearest

                labels = resize_nearest(self.doc.labels, (w, h)).astype(np.int64)
        job = self.client.submit(TextEditRequest(image=image.copy(), prompt=fields["prompt"], mask=mask,
                                                 mask_class=mask_class, labels=labels, seed=fields["seed"],
                                                 sample=fields["sample"], prompt2=fields.get("prompt2"),
                                                 alpha=fields.get("alpha", 0.0), model=fields.get("model")))
        self._photo_jobs[job] = "text"
        self.status_job.setText("editing…")
        return job

    def apply_result(self, img: np.ndarray) -> None:
        """A result from the history becomes the result layer again."""
        self.doc.set_result(img)
        self.result_view.set_image(img)

    def instance_swatches(self, iid: int) -> int | None:
        """Render the instance once per feature cluster of its class (engine thread); icons in the panel."""
        from engine.api import CallableRequest

        if self.doc.instances is None:
            return None
        labels, inst, model = self.doc.labels.copy(), self.doc.instances.copy(), self.model
        seed, controls = self.style_panel.controls()
        ys, xs = np.nonzero(inst == iid)
        if xs.size == 0:
            return None
        cls = int(labels[ys[0], xs[0]])
        n = self.style_panel.n_clusters.get(cls, 0)
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)

        def run(ctx):
            import dataclasses

            from engine.registry import generate

            m = ctx.model(model)
            out = []
            for k in range(n):
                ctx.progress(k / max(1, n), f"swatch {k + 1} of {n}")
                c = dataclasses.replace(controls, instance_clusters={**(controls.instance_clusters or {}), iid: k})
                img = generate(m, labels, inst, seed, controls=c)
                sy, sx = img.shape[0] / labels.shape[0], img.shape[1] / labels.shape[1]
                x0, y0, x1, y1 = box
                out.append(np.ascontiguousarray(img[int(y0 * sy):max(int(y0 * sy) + 1, int(y1 * sy)),
                                                    int(x0 * sx):max(int(x0 * sx) + 1, int(x1 * sx))]))
            return out
        job = self.client.submit(CallableRequest(fn=run, name="instance swatches"))
        self._swatch_jobs = getattr(self, "_swatch_jobs", {})
        self._swatch_jobs[job] = iid
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
        self.doc.set_layer_prop("result", visible=on)
        self.opacity_slider.setValue(0 if on else 100)

    # ---- layers, instances, favourites --------------------------------------------------------
    def _sync_layer_actions(self) -> None:
        """Menu checks and the toolbar's label opacity follow the document (panel edits, project loads)."""
        a, props = self.actions_, self.doc.layer_props
        for k, name in (("show_result", "result"), ("show_instances", "instances")):
            if a[k].isChecked() != props[name].visible:
                a[k].blockSignals(True)
                a[k].setChecked(props[name].visible)
                a[k].blockSignals(False)
        v = round(props["labels"].opacity * 100)
        if self.opacity_slider.value() != v:
            self.opacity_slider.blockSignals(True)
            self.opacity_slider.setValue(v)
            self.opacity_slider.blockSignals(False)

    def _on_active_layer(self, name: str) -> None:
        self.canvas.active_layer = name
        if name != "labels":
            self.doc.ensure_layer(name)
            if not self.doc.layer_props[name].visible:
                self.doc.set_layer_prop(name, visible=True)
        self._on_tool_changed(self.canvas.tool)
        self.statusBar().showMessage({"labels": "Painting classes", "instances": "Painting instance ids",
                                      "edges": "Painting edges / sketch lines"}[name], 4000)

    def _on_tool_changed(self, tool: str) -> None:
        a = self.actions_
        key = "tool_sketch" if tool == "brush" and self.canvas.active_layer == "edges" else f"tool_{tool}"
        a[key].setChecked(True)

    def sketch_brush(self) -> None:
        """The sketch brush: the brush on the edge layer."""
        self.layers_panel.set_active("edges")
        self.canvas.set_tool("brush")

    def new_instance(self) -> int:
        k = self.canvas.new_instance()
        if not self.doc.layer_props["instances"].visible:
            self.doc.set_layer_prop("instances", visible=True)
        return k

    def _on_instance(self, k: int) -> None:
        self.status_job.setText(f"instance {k}")

    def _set_preserve(self, mode: str, on: bool) -> None:
        a, c = self.actions_, self.canvas
        other = a["preserve_class" if mode == "void" else "preserve_void"]
        if on and other.isChecked():
            other.blockSignals(True)
            other.setChecked(False)
            other.blockSignals(False)
        c.preserve = mode if on else None
        c.preserve_class = c.current_class if on and mode == "class" else None
        if on and mode == "class":
            self.statusBar().showMessage(f"Painting only over {self.doc.labelset.classes[c.current_class].name} "
                                         "and void", 6000)

    def _save_favourites(self, labelset: str, favs: list) -> None:
        all_favs = dict(self.settings.get("favourites", {}))
        all_favs[labelset] = favs
        self.settings.set("favourites", all_favs)

    def _labelset_changed(self) -> None:
        ls = self.doc.labelset
        self.palette_panel.set_labelset(ls, self.settings.get("favourites", {}).get(ls.name, []))
        if self.canvas.current_class >= ls.num_indices:
            self.canvas.current_class = 0
        self.palette_panel.select(self.canvas.current_class)

    def model_manager(self, interactive: bool | None = None):
        """The Models dialog (non-modal; one at a time)."""
        from .widgets.models import ModelManagerDialog

        dlg = getattr(self, "_models_dialog", None)
        if dlg is None:
            dlg = ModelManagerDialog(self.client, self.model, self,
                                     self.interactive_errors if interactive is None else interactive)
            dlg.model_chosen.connect(lambda path, card: self.use_model(path, card))
            self._models_dialog = dlg
        else:
            dlg.refresh()
        dlg.show()
        dlg.raise_()
        return dlg

    def use_model(self, path: str, card: dict | None = None, convert_with=None) -> bool:
        """Generate with ``path`` from now on. A model of another label set first offers the conversion
        dialog (``convert_with`` answers it in tests); declining keeps the current model."""
        card = card or {}
        want = card.get("labelset")
        if want and want != self.doc.labelset.name:
            if convert_with is None and not self.interactive_errors:
                self.show_error("Label set differs", f"{Path(path).name} uses {want}; convert the document first")
                return False
            if not self.convert_labelset(want, accept_with=convert_with):
                self.status_job.setText(f"kept {Path(self.model).name if self.model else 'the demo model'}: "
                                        f"{Path(path).name} needs label set {want}")
                return False
        self.model = path
        self.live.model = path
        self.timeline_panel.model = path
        self.settings.set("model", path)
        self._refresh_model_card()
        self.status_job.setText(f"generating with {card.get('title') or Path(path).name}")
        return True

    def convert_labelset(self, target: str | None = None, accept_with=None) -> bool:
        """The conversion dialog; ``accept_with(dialog)`` adjusts and accepts it (tests)."""
        from .model.document import LayerLocked
        from .widgets.convert import ConvertDialog

        dlg = ConvertDialog(self.doc.labels, self.doc.labelset, self, target=target)
        if accept_with is not None:
            ok = accept_with(dlg) is not False          # returning False declines
        else:
            ok = dlg.exec() == dlg.DialogCode.Accepted
        if not ok:
            return False
        try:
            self.doc.convert_labelset(dlg.target, dlg.mapping())
        except (LayerLocked, ValueError) as e:
            self.show_error("Cannot convert", str(e))
            return False
        self.status_job.setText(f"converted to {dlg.target.title}; {dlg.lost_pixels():,} pixels became void "
                                "(Ctrl+Z undoes)")
        return True

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

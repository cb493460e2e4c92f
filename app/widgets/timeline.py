"""Timeline panel: a frame strip (keyframe diamonds, hold bars, range, rendered marks), play and pause,
fps and range, insert / duplicate / delete, import of label or RGB sequences, keyframe propagation, and
rendering the range (S-Flow or any generator, stabilised) to MP4 or PNG frames with per-frame progress,
cancel and scrubbing of the rendered frames.

The canvas edits the current frame: moving to another frame stores an edited frame as a keyframe.
Propagation and rendering run on the engine thread on a copy of the timeline.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QSlider, QSpinBox, QVBoxLayout, QWidget)

CELL = 22


class FrameStrip(QWidget):
    """One cell per frame: ◆ keyframe, a bar from a hold keyframe to the next, grey outside the range,
    dark where a frame has no labels yet, a green mark where a frame has been rendered."""
    clicked = Signal(int)

    def __init__(self, panel: "TimelinePanel"):
        super().__init__()
        self.panel = panel
        self.setMinimumHeight(48)

    def sizeHint(self) -> QSize:  # noqa: N802
        n = len(self.panel.tl) if self.panel.tl is not None else 0
        return QSize(max(200, n * CELL + 4), 48)

    def paintEvent(self, _ev) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(40, 40, 44))
        tl = self.panel.tl
        if tl is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No timeline: New Timeline, or import a sequence")
            p.end()
            return
        rng = tl.frame_range()
        keys = sorted(tl.keyframes)
        for i, f in enumerate(tl.frames):
            x = 2 + i * CELL
            has = f.labels is not None or f.label_path is not None
            col = QColor(90, 90, 98) if has else QColor(58, 58, 62)
            if i not in rng:
                col = col.darker(160)
            p.fillRect(QRectF(x, 8, CELL - 2, 30), col)
            if i in self.panel.rendered:
                p.fillRect(QRectF(x, 34, CELL - 2, 4), QColor(60, 190, 90))
            if i in tl.keyframes:
                c = QPointF(x + (CELL - 2) / 2, 20)
                dia = QPolygonF([c + QPointF(0, -6), c + QPointF(6, 0), c + QPointF(0, 6), c + QPointF(-6, 0)])
                p.setBrush(QColor(250, 200, 60))
                p.setPen(QPen(QColor(20, 20, 20), 1))
                p.drawPolygon(dia)
                if tl.keyframes[i]:                           # hold: a bar until the next keyframe
                    nxt = next((k for k in keys if k > i), len(tl.frames))
                    p.fillRect(QRectF(x + CELL / 2, 28, (nxt - i) * CELL - CELL / 2 - 2, 4), QColor(250, 200, 60))
            if i == self.panel.current:
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(QColor(255, 255, 255), 2))
                p.drawRect(QRectF(x - 1, 7, CELL, 32))
        p.end()

    def mousePressEvent(self, ev) -> None:  # noqa: N802
        tl = self.panel.tl
        if tl is not None:
            i = int((ev.position().x() - 2) // CELL)
            if 0 <= i < len(tl):
                self.clicked.emit(i)


class TimelinePanel(QWidget):
    frame_result = Signal(object)        # the rendered frame to show (or None)
    render_started = Signal(int)         # job id

    def __init__(self, doc, client, canvas=None, parent=None):
        super().__init__(parent)
        self.doc, self.client, self.canvas = doc, client, canvas
        self.current = 0
        self.rendered: dict[int, np.ndarray] = {}
        self.model = None
        self.last_error: str | None = None
        self.last_notes: list[str] = []
        self._loaded_hash: str | None = None
        self._jobs: dict[int, str] = {}
        self.strip = FrameStrip(self)
        scroll = QScrollArea()
        scroll.setWidget(self.strip)
        scroll.setWidgetResizable(True)
        scroll.setFixedHeight(70)
        self.scroll = scroll

        def btn(text, tip, fn):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda: fn())
            return b
        self.new_btn = btn("New", "A timeline of one frame: the canvas", self.new_timeline)
        self.import_labels_btn = btn("Import Labels…", "A folder of label frames (optionally matching RGB frames)",
                                     self.import_labels)
        self.import_frames_btn = btn("Import Frames…", "A folder of RGB/CG frames: paint keyframes, then propagate",
                                     self.import_frames)
        self.prev_btn = btn("◀", "Previous frame", lambda: self.step(-1))
        self.play_btn = btn("Play", "Play the range at the timeline's fps (rendered frames where there are)",
                            self.toggle_play)
        self.next_btn = btn("▶", "Next frame", lambda: self.step(1))
        self.insert_btn = btn("Insert", "An empty frame after this one (filled by propagation)", self.insert_frame)
        self.dup_btn = btn("Duplicate", "A copy of this frame after it, as a keyframe", self.duplicate_frame)
        self.del_btn = btn("Delete", "Delete this frame", self.delete_frame)
        self.key_btn = btn("Keyframe", "Make this frame a keyframe (its labels are kept) or clear it",
                           self.toggle_keyframe)
        self.hold = QCheckBox("Hold")
        self.hold.setToolTip("This keyframe is copied unchanged until the next keyframe instead of following "
                             "the motion")
        self.onion = QCheckBox("Onion skin")
        self.onion.setToolTip("Show the previous frame's labels faintly over this one")
        self.fps = QDoubleSpinBox(minimum=0.5, maximum=120.0, value=15.0, suffix=" fps")
        self.start = QSpinBox(minimum=1, maximum=1)
        self.end = QSpinBox(minimum=1, maximum=1)
        self.start.setToolTip("First frame of the range")
        self.end.setToolTip("Last frame of the range")
        self.propagate_btn = btn("Propagate", "Fill the frames between keyframes (flow on the RGB frames; hold "
                                 "without them)", self.propagate)
        self.stabilize = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=60)
        self.stabilize.setToolTip("Temporal stabilisation: 0 off, 100 strongest")
        self.render_btn = btn("Render…", "Generate the range to an MP4 or a folder of PNG frames", self.render)
        self.cancel_btn = btn("Cancel", "Stop rendering after the current frame", self.cancel)
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.info = QLabel()
        row1 = QHBoxLayout()
        for w in (self.new_btn, self.import_labels_btn, self.import_frames_btn, self.prev_btn, self.play_btn,
                  self.next_btn, self.fps, QLabel("Range"), self.start, self.end):
            row1.addWidget(w)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        for w in (self.insert_btn, self.dup_btn, self.del_btn, self.key_btn, self.hold, self.onion,
                  self.propagate_btn, QLabel("Stabilise"), self.stabilize, self.render_btn, self.cancel_btn,
                  self.progress):
            row2.addWidget(w)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(row1)
        lay.addWidget(scroll)
        lay.addLayout(row2)
        lay.addWidget(self.info)
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._tick)
        self.strip.clicked.connect(self.go_to)
        self.hold.toggled.connect(self._on_hold)
        self.onion.toggled.connect(lambda _on: self._update_onion())
        self.fps.valueChanged.connect(self._on_fps)
        self.start.valueChanged.connect(lambda _v: self._on_range())
        self.end.valueChanged.connect(lambda _v: self._on_range())
        client.event.connect(self._on_event)
        doc.timeline_replaced.connect(self._on_project)
        doc.about_to_save.append(self._remember_current)
        self._sync()

    @property
    def tl(self):
        """The document's timeline (saved in its project)."""
        return self.doc.timeline

    @tl.setter
    def tl(self, value) -> None:
        self.doc.timeline = value

    def _on_project(self) -> None:
        """A project was opened: its timeline (if any) is shown; the canvas holds its current frame."""
        self.rendered = {}
        self.current = int(self.doc.settings.get("timeline_current", 0)) if self.tl is not None else 0
        if self.tl is not None:
            self.current = max(0, min(len(self.tl) - 1, self.current))
        self._loaded_hash = self.doc.labels_hash() if self.tl is not None else None
        self._sync()

    def _remember_current(self) -> None:
        self._commit()
        if self.tl is not None:
            self.doc.settings["timeline_current"] = self.current

    # ---- building a timeline -------------------------------------------------------------------
    def _set_timeline(self, tl) -> None:
        self.tl, self.current, self.rendered = tl, 0, {}
        self._sync()
        self.go_to(0, commit=False)

    def new_timeline(self) -> None:
        from engine.video.sequence import Timeline

        tl = Timeline(self.doc.labelset, self.doc.size, fps=self.fps.value())
        tl.insert_frame(0, self.doc.labels.copy(), name="frame_00000")
        self._set_timeline(tl)

    def import_labels(self, label_dir: str | None = None, frames_dir: str | None = None) -> bool:
        from engine.video.sequence import SequenceError, load_sequence

        if label_dir is None:
            label_dir = QFileDialog.getExistingDirectory(self, "Folder of label frames")
            if not label_dir:
                return False
        try:
            tl = load_sequence(label_dir, self.doc.labelset, frames_dir, fps=self.fps.value())
        except (SequenceError, OSError, ValueError) as e:
            self._fail(str(e))
            return False
        self._set_timeline(tl)
        return True

    def import_frames(self, frames_dir: str | None = None) -> bool:
        """RGB/CG frames; the canvas's labels become the first keyframe (if they are the frames' size)."""
        from engine.video.sequence import SequenceError, frames_sequence

        if frames_dir is None:
            frames_dir = QFileDialog.getExistingDirectory(self, "Folder of RGB frames")
            if not frames_dir:
                return False
        try:
            tl = frames_sequence(frames_dir, self.doc.labelset, fps=self.fps.value())
        except (SequenceError, OSError, ValueError) as e:
            self._fail(str(e))
            return False
        if self.doc.size == tl.size:
            tl.set_keyframe(0, self.doc.labels.copy())
        self._set_timeline(tl)
        return True

    def _fail(self, msg: str) -> None:
        self.last_error = msg
        self.info.setText(f"⚠ {msg}")

    # ---- frames --------------------------------------------------------------------------------
    def _commit(self) -> None:
        """Keep the canvas's edits of the current frame (as a keyframe)."""
        if self.tl is None or self._loaded_hash is None or self.doc.size != self.tl.size:
            return
        if self.doc.labels_hash() != self._loaded_hash:
            self.tl.set_keyframe(self.current, self.doc.labels.copy(), hold=self.tl.keyframes.get(self.current, False))
            self.rendered.pop(self.current, None)
            self._loaded_hash = self.doc.labels_hash()

    def go_to(self, i: int, commit: bool = True) -> None:
        if self.tl is None:
            return
        if commit:
            self._commit()
        i = max(0, min(len(self.tl) - 1, int(i)))
        self.current = i
        f = self.tl.frames[i]
        try:
            labels = self.tl.labels(i)
        except Exception:  # noqa: BLE001 - a frame without labels yet shows void over its picture
            labels = np.full((self.tl.size[1], self.tl.size[0]), self.doc.labelset.erase_index, np.uint8)
        photo = self.tl.rgb(i)
        self.doc.set_labels(np.asarray(labels).astype(np.uint8), self.doc.path)
        if photo is not None:
            self.doc.photo = photo
            self.doc.layers_changed.emit()
        self._loaded_hash = self.doc.labels_hash()
        self.frame_result.emit(self.rendered.get(i))
        self.hold.blockSignals(True)
        self.hold.setChecked(bool(self.tl.keyframes.get(i, False)))
        self.hold.setEnabled(i in self.tl.keyframes)
        self.hold.blockSignals(False)
        self._update_onion()
        self.info.setText(f"frame {i + 1} of {len(self.tl)}: {f.name} ({'keyframe' if i in self.tl.keyframes else f.source})"
                          + (f", {100 * f.void_fraction:.1f}% void" if f.void_fraction else ""))
        self.strip.update()
        self.scroll.ensureVisible(2 + i * CELL, 20, CELL * 2, 0)

    def step(self, d: int) -> None:
        if self.tl is not None:
            rng = self.tl.frame_range()
            nxt = self.current + d
            if self.play_timer.isActive():
                nxt = rng.start if nxt >= rng.stop else nxt
            self.go_to(nxt)

    def _update_onion(self) -> None:
        if self.canvas is None:
            return
        prev = None
        if self.onion.isChecked() and self.tl is not None and self.current > 0:
            try:
                prev = np.asarray(self.tl.labels(self.current - 1))
            except Exception:  # noqa: BLE001 - no labels on the previous frame: no onion
                prev = None
        self.canvas.set_onion(prev)

    def insert_frame(self) -> None:
        if self.tl is None:
            return self.new_timeline()
        self._commit()
        self.tl.insert_frame(self.current + 1)
        self._shift_rendered(self.current + 1, +1)
        self._sync()
        self.go_to(self.current + 1, commit=False)

    def duplicate_frame(self) -> None:
        if self.tl is None:
            return
        self._commit()
        self.tl.duplicate_frame(self.current)
        self._shift_rendered(self.current + 1, +1)
        self._sync()
        self.go_to(self.current + 1, commit=False)

    def delete_frame(self) -> None:
        from engine.video.sequence import SequenceError

        if self.tl is None:
            return
        try:
            self.tl.delete_frame(self.current)
        except SequenceError as e:
            self._fail(str(e))
            return
        self.rendered.pop(self.current, None)
        self._shift_rendered(self.current + 1, -1)
        self._sync()
        self.go_to(min(self.current, len(self.tl) - 1), commit=False)

    def _shift_rendered(self, at: int, d: int) -> None:
        self.rendered = {(k + d if k >= at else k): v for k, v in self.rendered.items()}

    def toggle_keyframe(self) -> None:
        if self.tl is None:
            return
        if self.current in self.tl.keyframes and len(self.tl.keyframes) > 1:
            self.tl.clear_keyframe(self.current)
        else:
            self.tl.set_keyframe(self.current, self.doc.labels.copy())
        self._loaded_hash = self.doc.labels_hash()
        self.go_to(self.current, commit=False)

    def _on_hold(self, on: bool) -> None:
        if self.tl is not None and self.current in self.tl.keyframes:
            self.tl.set_keyframe(self.current, None if self.tl.frames[self.current].labels is None else
                                 self.tl.frames[self.current].labels, hold=on)
            self.strip.update()

    def _on_fps(self, v: float) -> None:
        if self.tl is not None:
            self.tl.fps = float(v)
        if self.play_timer.isActive():
            self.play_timer.setInterval(int(1000 / v))

    def _on_range(self) -> None:
        from engine.video.sequence import SequenceError

        if self.tl is None:
            return
        a, b = self.start.value() - 1, self.end.value()
        try:
            self.tl.set_range(a, b if b < len(self.tl) else None)
        except SequenceError as e:
            self._fail(str(e))
        self.strip.update()

    def _sync(self) -> None:
        n = len(self.tl) if self.tl is not None else 0
        for w in (self.start, self.end):
            w.blockSignals(True)
            w.setMaximum(max(1, n))
        if self.tl is not None:
            self.start.setValue(self.tl.start + 1)
            self.end.setValue(self.tl.end if self.tl.end is not None else n)
            self.fps.blockSignals(True)
            self.fps.setValue(self.tl.fps)
            self.fps.blockSignals(False)
        for w in (self.start, self.end):
            w.blockSignals(False)
        on = self.tl is not None
        for w in (self.prev_btn, self.play_btn, self.next_btn, self.insert_btn, self.dup_btn, self.del_btn,
                  self.key_btn, self.propagate_btn, self.render_btn, self.start, self.end):
            w.setEnabled(on)
        self.strip.updateGeometry()
        self.strip.adjustSize()
        self.strip.update()

    # ---- play ----------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.play_timer.stop()
            self.play_btn.setText("Play")
        elif self.tl is not None:
            self._commit()
            self.play_timer.start(int(1000 / self.fps.value()))
            self.play_btn.setText("Pause")

    def _tick(self) -> None:
        self.step(1)

    # ---- engine work ---------------------------------------------------------------------------
    def propagate(self) -> int | None:
        from engine.api import CallableRequest

        if self.tl is None:
            return None
        self._commit()
        tl = copy.deepcopy(self.tl)

        def run(ctx):
            reports = tl.resolve(progress=lambda f: ctx.progress(f, "propagating keyframes"),
                                 should_stop=ctx.cancel_event.is_set)
            return tl, reports
        job = self.client.submit(CallableRequest(fn=run, name="propagate"))
        self._jobs[job] = "propagate"
        self.info.setText("propagating keyframes…")
        return job

    def render(self, output: str | None = None) -> int | None:
        from engine.api import VideoRequest

        if self.tl is None:
            return None
        if output is None:
            output, _ = QFileDialog.getSaveFileName(self, "Render video", "video.mp4",
                                                    "MP4 video (*.mp4);;PNG frames (folder; give a name without "
                                                    "an extension)")
            if not output:
                return None
        self._commit()
        job = self.client.submit(VideoRequest(timeline=copy.deepcopy(self.tl), output=str(output), model=self.model,
                                              stabilize=self.stabilize.value() / 100,
                                              seed=int(self.doc.settings.get("seed", 0))))
        self._jobs[job] = "render"
        self.cancel_btn.setEnabled(True)
        self.render_btn.setEnabled(False)
        self.progress.setValue(0)
        self.info.setText(f"rendering to {Path(output).name}…")
        self.render_started.emit(job)
        return job

    def cancel(self) -> None:
        for job, kind in list(self._jobs.items()):
            if kind == "render":
                self.client.cancel(job)

    def _on_event(self, ev) -> None:
        kind = self._jobs.get(ev.job_id)
        if kind is None:
            return
        if ev.kind == "progress":
            if ev.progress is not None:
                self.progress.setValue(int(round(100 * ev.progress)))
            if kind == "render" and ev.preview is not None:
                i, img = ev.preview
                self.rendered[int(i)] = img
                self.strip.update()
                if i == self.current:
                    self.frame_result.emit(img)
            return
        if ev.kind not in ("result", "error", "cancelled"):
            return
        self._jobs.pop(ev.job_id, None)
        if kind == "render":
            self.cancel_btn.setEnabled(False)
            self.render_btn.setEnabled(True)
        if ev.kind == "error":
            self._fail(ev.error or "unknown engine error")
        elif ev.kind == "cancelled":
            self.info.setText(f"{kind} cancelled; {len(self.rendered)} frames rendered so far")
        elif kind == "propagate":
            tl, reports = ev.result
            tl.fps, tl.start, tl.end = self.tl.fps, self.tl.start, self.tl.end
            self.tl = tl
            self.last_notes = [r.note() for r in reports if r.void_fraction > 0]
            self.info.setText(f"propagated {len(reports)} frames" +
                              (f"; {len(self.last_notes)} with void pixels" if self.last_notes else ""))
            self._sync()
            self.go_to(self.current, commit=False)
        else:
            r = ev.result
            self.last_notes = list(r.notes)
            self.info.setText(f"rendered {r.frames} frames ({r.size[0]}x{r.size[1]}) to {Path(r.output).name} in "
                              f"{r.seconds:.1f} s ({r.fps:.1f} fps)")
            self.progress.setValue(100)

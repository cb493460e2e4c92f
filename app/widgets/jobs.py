"""Jobs panel: the engine's queue with stage names and progress, cancel, and a history of results.

The history keeps thumbnails and full images of finished jobs up to a memory cap (oldest dropped
first); any of them can be applied as the document's result layer again.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QProgressBar, QPushButton,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

KIND_TITLES = {"GenerateRequest": "Generate", "StylizeRequest": "Stylize", "TextEditRequest": "Text edit",
               "VideoRequest": "Video", "AutoLabelRequest": "Auto-label", "RegionRequest": "Region",
               "LoadModelRequest": "Load model", "UnloadRequest": "Unload", "CallableRequest": "Task"}
DEFAULT_CAP_MB = 256


def result_image(result) -> np.ndarray | None:
    """The picture a job produced, if it produced one."""
    img = getattr(result, "image", None)
    if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
        return img
    return None


def thumbnail_icon(img: np.ndarray, size: int = 96) -> QIcon:
    arr = np.ascontiguousarray(img)
    q = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], QImage.Format.Format_RGB888)
    return QIcon(QPixmap.fromImage(q.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation)))


class JobsPanel(QWidget):
    apply_result = Signal(object)          # an (H, W, 3) uint8 image to put on the result layer

    def __init__(self, client, parent=None, cap_mb: int = DEFAULT_CAP_MB):
        super().__init__(parent)
        self.client = client
        self.cap_bytes = int(cap_mb) << 20
        self.rows: dict[int, QTreeWidgetItem] = {}
        self.history: list[dict] = []       # newest last: {"job", "kind", "image", "when", "item"}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Job", "Stage", "Progress", ""])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 110)
        self.tree.setColumnWidth(1, 170)
        self.results = QListWidget()
        self.results.setViewMode(QListWidget.ViewMode.IconMode)
        self.results.setIconSize(QSize(96, 72))
        self.results.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.results.setMovement(QListWidget.Movement.Static)
        self.results.setToolTip("Finished results; double-click or Apply puts one on the result layer")
        self.apply_btn = QPushButton("Apply as Result Layer")
        self.cancel_all_btn = QPushButton("Cancel All")
        self.usage = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.apply_btn)
        row.addWidget(self.cancel_all_btn)
        row.addStretch(1)
        row.addWidget(self.usage)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.tree, 2)
        lay.addWidget(QLabel("Results"))
        lay.addWidget(self.results, 3)
        lay.addLayout(row)
        self.apply_btn.clicked.connect(self.apply_selected)
        self.results.itemDoubleClicked.connect(lambda _it: self.apply_selected())
        self.cancel_all_btn.clicked.connect(client.worker.cancel_all)
        client.event.connect(self._on_event)
        self._update_usage()

    # ---- the queue -----------------------------------------------------------------------------
    def _row(self, ev) -> QTreeWidgetItem:
        it = self.rows.get(ev.job_id)
        if it is None:
            it = QTreeWidgetItem([f"{KIND_TITLES.get(ev.request_kind, ev.request_kind)} #{ev.job_id}", "queued"])
            self.tree.insertTopLevelItem(0, it)
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setValue(0)
            bar.setMaximumHeight(16)
            self.tree.setItemWidget(it, 2, bar)
            btn = QPushButton("Cancel")
            btn.setMaximumHeight(20)
            btn.clicked.connect(lambda _=False, j=ev.job_id: self.client.cancel(j))
            self.tree.setItemWidget(it, 3, btn)
            it.bar, it.btn = bar, btn
            self.rows[ev.job_id] = it
            while self.tree.topLevelItemCount() > 50:          # the list shows the last 50 jobs
                old = self.tree.takeTopLevelItem(self.tree.topLevelItemCount() - 1)
                self.rows = {k: v for k, v in self.rows.items() if v is not old}
        return it

    def _on_event(self, ev) -> None:
        it = self._row(ev)
        if ev.kind == "started":
            it.setText(1, "started")
        elif ev.kind == "progress":
            if ev.stage:
                it.setText(1, ev.stage)
            if ev.progress is not None:
                it.bar.setValue(int(round(100 * ev.progress)))
        elif ev.kind in ("result", "error", "cancelled"):
            it.setText(1, {"result": "done", "cancelled": "cancelled"}.get(ev.kind, f"failed: {ev.error}"))
            if ev.kind == "error":
                it.setToolTip(1, ev.error or "")
            it.bar.setValue(100 if ev.kind == "result" else it.bar.value())
            it.btn.setEnabled(False)
            if ev.kind == "result":
                img = result_image(ev.result)
                if img is not None:
                    self.add_result(ev.job_id, ev.request_kind, img)

    def state(self, job_id: int) -> str | None:
        it = self.rows.get(job_id)
        return None if it is None else it.text(1)

    # ---- the result history --------------------------------------------------------------------
    def add_result(self, job_id: int, kind: str, img: np.ndarray) -> None:
        item = QListWidgetItem(thumbnail_icon(img), f"{KIND_TITLES.get(kind, kind)} #{job_id}")
        item.setData(Qt.ItemDataRole.UserRole, job_id)
        item.setToolTip(f"{img.shape[1]}x{img.shape[0]}, {time.strftime('%H:%M:%S')}")
        self.results.insertItem(0, item)
        self.history.append({"job": job_id, "kind": kind, "image": img, "item": item})
        self._enforce_cap()
        self._update_usage()

    def history_bytes(self) -> int:
        return sum(h["image"].nbytes for h in self.history)

    def _enforce_cap(self) -> None:
        while len(self.history) > 1 and self.history_bytes() > self.cap_bytes:
            old = self.history.pop(0)
            self.results.takeItem(self.results.row(old["item"]))

    def set_cap_mb(self, mb: int) -> None:
        self.cap_bytes = int(mb) << 20
        self._enforce_cap()
        self._update_usage()

    def _update_usage(self) -> None:
        self.usage.setText(f"{len(self.history)} results, {self.history_bytes() / 2**20:.1f} of "
                           f"{self.cap_bytes / 2**20:.0f} MB")

    def apply_selected(self) -> np.ndarray | None:
        it = self.results.currentItem()
        if it is None:
            return None
        job = it.data(Qt.ItemDataRole.UserRole)
        for h in self.history:
            if h["job"] == job:
                self.apply_result.emit(h["image"])
                return h["image"]
        return None

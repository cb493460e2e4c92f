"""Style-image picker: bundled style photos (with their licences) and your own, global or region-wise
transfer, smoothing exact / fast / off; applied to the current result as a new result."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QRadioButton, QVBoxLayout, QWidget)

from .jobs import thumbnail_icon

SMOOTHING = (("exact", "Exact (closed-form, best)"), ("fast", "Fast (guided filter)"), ("none", "Off"))


class StylizePanel(QWidget):
    stylize_requested = Signal(object, str, str)     # style image, mode (global | regions), smoothing
    user_styles_changed = Signal(list)                # paths of images the user added

    def __init__(self, parent=None, user_styles: list[str] | None = None):
        super().__init__(parent)
        from engine.labels.io import open_image
        from engine.stylize import bundled_styles

        self._open = open_image
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(96, 64))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setWordWrap(True)
        self.licence = QLabel()
        self.licence.setWordWrap(True)
        self.licence.setStyleSheet("color:#666;")
        self.add_btn = QPushButton("Add Image…")
        self.global_btn, self.region_btn = QRadioButton("Global"), QRadioButton("Region-wise")
        self.global_btn.setToolTip("Match the whole style photo's look")
        self.region_btn.setToolTip("Sky to sky, road to road: regions are matched by class (street classes are "
                                   "labelled automatically)")
        self.global_btn.setChecked(True)
        grp = QButtonGroup(self)
        grp.addButton(self.global_btn)
        grp.addButton(self.region_btn)
        self.smooth = QComboBox()
        for key, title in SMOOTHING:
            self.smooth.addItem(title, key)
        self.apply_btn = QPushButton("Stylize Result")
        self.apply_btn.setToolTip("PhotoWCT then smoothing, on the current result (or the photo); the output "
                                  "becomes a new result")
        row = QHBoxLayout()
        row.addWidget(self.global_btn)
        row.addWidget(self.region_btn)
        row.addStretch(1)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Smoothing"))
        row2.addWidget(self.smooth, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.licence)
        lay.addWidget(self.add_btn)
        lay.addLayout(row)
        lay.addLayout(row2)
        lay.addWidget(self.apply_btn)
        self.images: dict[str, np.ndarray] = {}
        for e in bundled_styles():
            self._add(e["path"], e["title"], e["licence"])
        self.user_styles: list[str] = []
        for p in user_styles or []:
            if Path(p).exists():
                self.add_image(p, remember=False)
        self.list.currentItemChanged.connect(self._on_current)
        self.add_btn.clicked.connect(lambda: self.add_image())
        self.apply_btn.clicked.connect(self.request)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _add(self, path: str, title: str, licence: str) -> QListWidgetItem | None:
        try:
            img = np.array(self._open(path).convert("RGB"))
        except (OSError, ValueError):
            return None
        self.images[path] = img
        it = QListWidgetItem(thumbnail_icon(img, 96), title)
        it.setData(Qt.ItemDataRole.UserRole, path)
        it.setData(Qt.ItemDataRole.UserRole + 1, licence)
        it.setToolTip(f"{title}\n{licence}")
        self.list.addItem(it)
        return it

    def add_image(self, path: str | None = None, remember: bool = True) -> bool:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Add a style photo", "",
                                                  "Images (*.png *.jpg *.jpeg *.bmp *.tif)")
            if not path:
                return False
        it = self._add(str(path), Path(path).stem, "your image")
        if it is None:
            self.licence.setText(f"cannot read {Path(path).name}")
            return False
        if remember and str(path) not in self.user_styles:
            self.user_styles.append(str(path))
            self.user_styles_changed.emit(list(self.user_styles))
        self.list.setCurrentItem(it)
        return True

    def _on_current(self, cur, _prev) -> None:
        self.licence.setText("" if cur is None else f"Licence: {cur.data(Qt.ItemDataRole.UserRole + 1)}")

    def current_style(self) -> np.ndarray | None:
        it = self.list.currentItem()
        return None if it is None else self.images.get(it.data(Qt.ItemDataRole.UserRole))

    def mode(self) -> str:
        return "regions" if self.region_btn.isChecked() else "global"

    def request(self) -> bool:
        img = self.current_style()
        if img is None:
            self.licence.setText("choose a style photo first")
            return False
        self.stylize_requested.emit(img, self.mode(), self.smooth.currentData())
        return True

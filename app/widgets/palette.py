"""Class palette panel: names and colours of the label set; click to choose the painting class."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from engine.labels import LabelSet


def swatch(color, size: int = 14) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*color))
    return QIcon(pm)


class PalettePanel(QWidget):
    class_chosen = Signal(int)

    def __init__(self, labelset: LabelSet, parent=None):
        super().__init__(parent)
        self.filter = QLineEdit(placeholderText="Search classes…")
        self.list = QListWidget()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.filter)
        lay.addWidget(self.list)
        self.filter.textChanged.connect(self._apply_filter)
        self.list.currentItemChanged.connect(self._on_current)
        self.set_labelset(labelset)

    def set_labelset(self, ls: LabelSet) -> None:
        self.labelset = ls
        self.list.blockSignals(True)
        self.list.clear()
        for c in ls.classes:
            it = QListWidgetItem(swatch(c.color), f"{c.index:3d}  {c.name}")
            it.setData(Qt.ItemDataRole.UserRole, c.index)
            self.list.addItem(it)
        self.list.blockSignals(False)

    def select(self, index: int) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == index:
                self.list.blockSignals(True)
                self.list.setCurrentRow(i)
                self.list.blockSignals(False)
                return

    def current_index(self) -> int | None:
        it = self.list.currentItem()
        return None if it is None else int(it.data(Qt.ItemDataRole.UserRole))

    def _on_current(self, cur, _prev) -> None:
        if cur is not None:
            self.class_chosen.emit(int(cur.data(Qt.ItemDataRole.UserRole)))

    def _apply_filter(self, text: str) -> None:
        t = text.strip().lower()
        for i in range(self.list.count()):
            it = self.list.item(i)
            it.setHidden(bool(t) and t not in it.text().lower())

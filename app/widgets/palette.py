"""Class palette panel: names and colours of the label set; click to choose the painting class.

Search filters by name; favourites (Ctrl+D, or the context menu) are listed first with a star and are
chosen with the keys 1-9 in that order.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QLineEdit, QListWidget, QListWidgetItem, QMenu, QVBoxLayout, QWidget

from engine.labels import LabelSet


def swatch(color, size: int = 14) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*color))
    return QIcon(pm)


class PalettePanel(QWidget):
    class_chosen = Signal(int)
    favourites_changed = Signal(str, list)      # label-set name, favourite class indices

    def __init__(self, labelset: LabelSet, parent=None, favourites: list[int] | None = None):
        super().__init__(parent)
        self.favourites: list[int] = list(favourites or [])
        self.filter = QLineEdit(placeholderText="Search classes…")
        self.filter.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.filter)
        lay.addWidget(self.list)
        self.filter.textChanged.connect(self._apply_filter)
        self.list.currentItemChanged.connect(self._on_current)
        self.set_labelset(labelset)

    def set_labelset(self, ls: LabelSet, favourites: list[int] | None = None) -> None:
        self.labelset = ls
        if favourites is not None:
            self.favourites = [i for i in favourites if 0 <= i < ls.num_indices]
        self._fill()

    def _fill(self) -> None:
        cur = self.current_index()
        ls = self.labelset
        self.list.blockSignals(True)
        self.list.clear()
        favs = [i for i in self.favourites if 0 <= i < ls.num_indices]
        rows = favs + [c.index for c in ls.classes if c.index not in favs]
        for n, i in enumerate(rows):
            c = ls.classes[i]
            key = f"  [{n + 1}]" if n < len(favs) and n < 9 else ""
            it = QListWidgetItem(swatch(c.color), ("★ " if i in favs else "    ") + f"{c.index:3d}  {c.name}{key}")
            it.setData(Qt.ItemDataRole.UserRole, c.index)
            self.list.addItem(it)
            if i == cur:
                self.list.setCurrentItem(it)
        self.list.blockSignals(False)
        self._apply_filter(self.filter.text())

    def toggle_favourite(self, index: int | None = None) -> bool:
        """Star or unstar a class (default: the current one); returns whether it is now a favourite."""
        index = self.current_index() if index is None else index
        if index is None:
            return False
        if index in self.favourites:
            self.favourites.remove(index)
        else:
            self.favourites.append(index)
        self._fill()
        self.favourites_changed.emit(self.labelset.name, list(self.favourites))
        return index in self.favourites

    def choose_favourite(self, n: int) -> int | None:
        """The n-th favourite (1-based) becomes the painting class."""
        favs = [i for i in self.favourites if 0 <= i < self.labelset.num_indices]
        if not 1 <= n <= len(favs):
            return None
        self.select(favs[n - 1])
        self.class_chosen.emit(favs[n - 1])
        return favs[n - 1]

    def _menu(self, pos) -> None:
        it = self.list.itemAt(pos)
        if it is None:
            return
        i = int(it.data(Qt.ItemDataRole.UserRole))
        m = QMenu(self)
        m.addAction("Remove from favourites" if i in self.favourites else "Add to favourites",
                    lambda: self.toggle_favourite(i))
        m.exec(self.list.viewport().mapToGlobal(pos))

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

"""Layers panel: order, visibility, opacity and lock of every layer; choosing the layer brushes paint.

The list shows the top layer first (as Krita and GIMP do). The document owns the properties; this
panel edits them and follows them (a project load replaces them).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from ..model.document import EDITABLE_LAYERS, LAYER_TITLES, Document


class LayersPanel(QWidget):
    active_changed = Signal(str)        # the layer brushes, fills and shapes now edit

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.active = "labels"
        self.list = QListWidget()
        self.list.setToolTip("Tick to show a layer; select Semantic labels, Instances or Edges to paint on it")
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
        self.opacity.setToolTip("Opacity of the selected layer")
        self.opacity_label = QLabel("100%")
        self.lock = QCheckBox("Lock")
        self.lock.setToolTip("A locked layer refuses edits")
        self.up, self.down = QToolButton(text="▲"), QToolButton(text="▼")
        self.up.setToolTip("Move the layer up (drawn over the ones below)")
        self.down.setToolTip("Move the layer down")
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        row.addWidget(self.opacity_label)
        row2 = QHBoxLayout()
        row2.addWidget(self.lock)
        row2.addStretch(1)
        row2.addWidget(self.up)
        row2.addWidget(self.down)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.list)
        lay.addLayout(row)
        lay.addLayout(row2)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentItemChanged.connect(self._on_current)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.lock.toggled.connect(self._on_lock)
        self.up.clicked.connect(lambda: self._move(+1))
        self.down.clicked.connect(lambda: self._move(-1))
        doc.layer_props_changed.connect(self.refresh)
        doc.layers_changed.connect(self.refresh)
        self.refresh()

    def _name(self, item) -> str:
        return item.data(Qt.ItemDataRole.UserRole)

    def selected(self) -> str | None:
        it = self.list.currentItem()
        return None if it is None else self._name(it)

    def refresh(self) -> None:
        """Rebuild the rows from the document (order, visibility, lock, which layers have content)."""
        keep = self.selected() or self.active
        self.list.blockSignals(True)
        self.list.clear()
        for name in reversed(self.doc.layer_order):                 # top first
            props = self.doc.layer_props[name]
            empty = name not in ("labels", "mask") and self.doc.layer(name) is None
            text = LAYER_TITLES[name] + (" 🔒" if props.locked else "") + (" (empty)" if empty else "")
            it = QListWidgetItem(text)
            it.setData(Qt.ItemDataRole.UserRole, name)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked if props.visible else Qt.CheckState.Unchecked)
            if name == self.active:
                f = QFont(it.font())
                f.setBold(True)
                it.setFont(f)
                it.setToolTip("Brushes paint on this layer")
            self.list.addItem(it)
            if name == keep:
                self.list.setCurrentItem(it)
        self.list.blockSignals(False)
        self._sync_controls()

    def _sync_controls(self) -> None:
        name = self.selected()
        for wdg in (self.opacity, self.lock):
            wdg.blockSignals(True)
        if name is not None:
            p = self.doc.layer_props[name]
            self.opacity.setValue(round(p.opacity * 100))
            self.opacity_label.setText(f"{round(p.opacity * 100)}%")
            self.lock.setChecked(p.locked)
            self.lock.setEnabled(name in EDITABLE_LAYERS)
        for wdg in (self.opacity, self.lock):
            wdg.blockSignals(False)

    def set_active(self, name: str) -> None:
        if name not in EDITABLE_LAYERS:
            raise ValueError(f"layer '{name}' cannot be painted")
        if name != self.active:
            self.active = name
            self.active_changed.emit(name)
        self.refresh()

    def select(self, name: str) -> None:
        for i in range(self.list.count()):
            if self._name(self.list.item(i)) == name:
                self.list.setCurrentRow(i)
                return

    def _on_current(self, cur, _prev) -> None:
        if cur is None:
            return
        name = self._name(cur)
        self._sync_controls()
        if name in EDITABLE_LAYERS and name != self.active:
            self.active = name
            self.active_changed.emit(name)
            self.refresh()

    def _on_item_changed(self, item) -> None:
        name = self._name(item)
        on = item.checkState() == Qt.CheckState.Checked
        if self.doc.layer_props[name].visible != on:
            self.doc.set_layer_prop(name, visible=on)

    def _on_opacity(self, v: int) -> None:
        name = self.selected()
        if name is not None:
            self.opacity_label.setText(f"{v}%")
            self.doc.set_layer_prop(name, opacity=v / 100)

    def _on_lock(self, on: bool) -> None:
        name = self.selected()
        if name is not None:
            self.doc.set_layer_prop(name, locked=on)

    def _move(self, delta: int) -> None:
        name = self.selected()
        if name is not None:
            self.doc.move_layer(name, delta)

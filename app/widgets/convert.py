"""Label-set conversion dialog: choose the target set, then check or change every class's mapping."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

from engine.labels import LabelSet, available_labelsets, get_labelset
from engine.labels.convert import default_mapping

from .palette import swatch

VOID = -1


class ConvertDialog(QDialog):
    """Rows: the classes of the current set (those in the picture first, with pixel counts); each has a
    target class or "(void)". Nothing changes until OK."""

    def __init__(self, labels: np.ndarray, src: LabelSet, parent=None, target: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Convert label set")
        self.labels, self.src = labels, src
        self.counts = np.bincount(labels.reshape(-1), minlength=src.num_indices)[:src.num_indices]
        self.target_box = QComboBox()
        names = [n for n in available_labelsets() if n != src.name]
        for n in names:
            self.target_box.addItem(get_labelset(n).title, n)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels([f"{src.title} class", "Pixels", "Becomes"])
        self.table.verticalHeader().setVisible(False)
        self.summary = QLabel()
        top = QHBoxLayout()
        top.addWidget(QLabel(f"From {src.title} to"))
        top.addWidget(self.target_box, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(QLabel("Each class becomes the class chosen here; unmapped classes become void. "
                             "The conversion is one undo step."))
        lay.addWidget(self.table, 1)
        lay.addWidget(self.summary)
        lay.addWidget(buttons)
        self.resize(560, 520)
        self.target_box.currentIndexChanged.connect(self._fill)
        if target is not None and target in names:
            self.target_box.setCurrentIndex(names.index(target))
        self._fill()

    @property
    def target(self) -> LabelSet:
        return get_labelset(self.target_box.currentData())

    def _fill(self) -> None:
        dst = self.target
        proposal = default_mapping(self.src, dst)
        order = sorted(range(self.src.num_indices), key=lambda i: (-int(self.counts[i] > 0), i))
        self.table.setRowCount(len(order))
        self._boxes: dict[int, QComboBox] = {}
        for row, i in enumerate(order):
            c = self.src.classes[i]
            it = QTableWidgetItem(swatch(c.color), c.name)
            self.table.setItem(row, 0, it)
            self.table.setItem(row, 1, QTableWidgetItem(f"{int(self.counts[i]):,}"))
            box = QComboBox()
            box.addItem("(void)", VOID)
            for d in dst.classes:
                box.addItem(swatch(d.color), d.name, d.index)
            t = proposal.get(i)
            box.setCurrentIndex(0 if t is None else box.findData(int(t)))
            box.currentIndexChanged.connect(self._update_summary)
            self.table.setCellWidget(row, 2, box)
            self._boxes[i] = box
        self.table.resizeColumnsToContents()
        self._update_summary()

    def set_target_class(self, src_index: int, dst_index: int | None) -> None:
        box = self._boxes[src_index]
        box.setCurrentIndex(box.findData(VOID if dst_index is None else int(dst_index)))

    def mapping(self) -> dict[int, int | None]:
        out = {}
        for i, box in self._boxes.items():
            v = box.currentData()
            out[i] = None if v == VOID else int(v)
        return out

    def lost_pixels(self) -> int:
        """Pixels of real classes that the mapping sends to void."""
        m = self.mapping()
        return int(sum(self.counts[i] for i, t in m.items() if t is None and i != self.src.void_index))

    def _update_summary(self) -> None:
        lost = self.lost_pixels()
        total = max(1, int(self.counts.sum()))
        self.summary.setText(f"{lost:,} pixels ({100 * lost / total:.1f}%) of mapped-to-void classes will become "
                             f"void." if lost else "Every labelled pixel keeps a class.")

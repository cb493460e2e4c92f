"""The text-edit prompt box (SIMGAN): a prompt with history, an optional limit to a class or to the
changed region, seed and diversity, interpolation towards a second prompt, and what the model
understood of it."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QSpinBox, QVBoxLayout, QWidget)

HISTORY = 20


def text_models() -> list[tuple[str, str]]:
    """(title, folder) of every SIMGAN model, bundled first; reads only the small card files."""
    from engine.paths import bundled_models_dir, user_models_dir

    out = []
    for root in (bundled_models_dir(), user_models_dir()):
        if not root.is_dir():
            continue
        for d in sorted(p for p in root.iterdir() if (p / "card.json").is_file()):
            try:
                card = json.loads((d / "card.json").read_text())
            except (OSError, ValueError):
                continue
            if card.get("family") == "simgan":
                out.append((card.get("title") or d.name, str(d)))
    return out


class PromptPanel(QWidget):
    edit_requested = Signal(dict)            # TextEditRequest fields, from the panel
    history_changed = Signal(list)

    def __init__(self, doc, parent=None, history: list[str] | None = None):
        super().__init__(parent)
        self.doc = doc
        self.prompt = QComboBox()
        self.prompt.setEditable(True)
        self.prompt.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.prompt.lineEdit().setPlaceholderText("the car is red")
        self.prompt.addItems(list(history or [])[:HISTORY])
        self.prompt.setCurrentIndex(-1)
        self.model = QComboBox()
        self.limit = QComboBox()
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.diverse = QCheckBox("Diversity")
        self.diverse.setChecked(True)
        self.diverse.setToolTip("Sample the conditioning (another seed, another shade); off: the prompt's mean")
        self.prompt2 = QComboBox()
        self.prompt2.setEditable(True)
        self.prompt2.lineEdit().setPlaceholderText("optional second prompt")
        self.alpha = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
        self.alpha.setToolTip("0: the first prompt, 100: the second; between: their interpolation")
        self.alpha_label = QLabel("0%")
        self.apply_btn = QPushButton("Edit Result")
        self.apply_btn.setToolTip("Apply the prompt to the current result (or the photo): a new result")
        self.understood = QLabel()
        self.understood.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        form.addRow("Model", self.model)
        form.addRow("Limit to", self.limit)
        row = QHBoxLayout()
        row.addWidget(self.seed, 1)
        row.addWidget(self.diverse)
        form.addRow("Seed", row)
        form.addRow("Towards", self.prompt2)
        row2 = QHBoxLayout()
        row2.addWidget(self.alpha, 1)
        row2.addWidget(self.alpha_label)
        form.addRow("Blend", row2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(form)
        lay.addWidget(self.apply_btn)
        lay.addWidget(self.understood)
        lay.addStretch(1)
        self.alpha.valueChanged.connect(lambda v: self.alpha_label.setText(f"{v}%"))
        self.apply_btn.clicked.connect(self.request)
        self.prompt.lineEdit().returnPressed.connect(self.request)
        doc.layers_changed.connect(self.refresh_limits)
        self.refresh_models()
        self.refresh_limits()

    def refresh_models(self) -> None:
        self.model.clear()
        for title, path in text_models():
            self.model.addItem(title, path)
        have = self.model.count() > 0
        self.apply_btn.setEnabled(have)
        if not have:
            self.understood.setText("No text-edit model is installed: train one (semstudio train simgan) or "
                                    "import one in Models.")

    def refresh_limits(self) -> None:
        keep = self.limit.currentData()
        self.limit.clear()
        self.limit.addItem("the whole image", None)
        if self.doc.base_labels is not None:
            self.limit.addItem("the changed region", "changed")
        for c in self.doc.labelset.classes:
            if c.index != self.doc.labelset.void_index:
                self.limit.addItem(f"class: {c.name}", f"class:{c.name}")
        i = self.limit.findData(keep)
        self.limit.setCurrentIndex(max(0, i))

    def text(self) -> str:
        return self.prompt.currentText().strip()

    def request(self) -> dict | None:
        text = self.text()
        if self.model.count() == 0:
            return None
        if text:
            items = [self.prompt.itemText(i) for i in range(self.prompt.count()) if self.prompt.itemText(i) != text]
            self.prompt.blockSignals(True)
            self.prompt.clear()
            self.prompt.addItems([text] + items[:HISTORY - 1])
            self.prompt.setCurrentIndex(0)
            self.prompt.blockSignals(False)
            self.history_changed.emit([text] + items[:HISTORY - 1])
        p2 = self.prompt2.currentText().strip() or None
        fields = {"prompt": text, "model": self.model.currentData(), "limit": self.limit.currentData(),
                  "seed": self.seed.value(), "sample": self.diverse.isChecked(),
                  "prompt2": p2, "alpha": self.alpha.value() / 100 if p2 else 0.0}
        self.understood.setText("editing…")
        self.edit_requested.emit(fields)
        return fields

    def show_understood(self, res) -> None:
        u = res.understood
        lines = [f"Understood: {u.summary()}"] + [f"⚠ {w}" for w in list(res.warnings)]
        self.understood.setText("\n".join(lines))

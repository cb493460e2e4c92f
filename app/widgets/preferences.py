"""Preferences: device, memory budgets, models folder, autosave interval, shortcuts.

Stored in the platformdirs settings JSON (:class:`app.settings.Settings`); QSettings is used for window
geometry only. ``apply_preferences`` puts the values into effect in a running window.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULTS = {"device": "auto", "undo_budget_mb": 256, "autosave_seconds": 60, "models_dir": "", "shortcuts": {}}


def models_dir(settings) -> Path:
    from engine.paths import user_models_dir

    return Path(settings.get("models_dir") or user_models_dir())


class PreferencesDialog(QDialog):
    def __init__(self, settings, actions: dict, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings, self.actions = settings, actions
        tabs = QTabWidget()
        general = QWidget()
        form = QFormLayout(general)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.get("device", DEFAULTS["device"]))
        self.device.setToolTip("Where the generators run; auto = CUDA, then MPS, then the CPU. Applies at the next "
                               "start of the editor.")
        form.addRow("Device", self.device)
        self.undo_mb = QSpinBox(minimum=16, maximum=16384, suffix=" MB")
        self.undo_mb.setValue(int(settings.get("undo_budget_mb", DEFAULTS["undo_budget_mb"])))
        self.undo_mb.setToolTip("Memory for undo steps per document; older steps are compressed, then dropped")
        form.addRow("Undo memory", self.undo_mb)
        self.autosave = QSpinBox(minimum=0, maximum=3600, suffix=" s")
        self.autosave.setSpecialValueText("off")
        self.autosave.setValue(int(settings.get("autosave_seconds", DEFAULTS["autosave_seconds"])))
        form.addRow("Autosave every", self.autosave)
        row = QHBoxLayout()
        self.models = QLineEdit(str(models_dir(settings)))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_models)
        self.open_models = QPushButton("Open folder")
        self.open_models.clicked.connect(self._open_models)
        row.addWidget(self.models, 1)
        row.addWidget(browse)
        row.addWidget(self.open_models)
        form.addRow("Models folder", row)
        tabs.addTab(general, "General")
        self.table = QTableWidget(len(actions), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self._ids = []
        custom = settings.get("shortcuts", {}) or {}
        for r, (aid, act) in enumerate(sorted(actions.items(), key=lambda kv: kv[1].text().replace("&", ""))):
            self._ids.append(aid)
            item = QTableWidgetItem(act.text().replace("&", "").rstrip("…"))
            item.setFlags(item.flags() & ~item.flags().ItemIsEditable)
            self.table.setItem(r, 0, item)
            self.table.setItem(r, 1, QTableWidgetItem(custom.get(aid, act.shortcut().toString())))
        self.table.resizeColumnsToContents()
        tabs.addTab(self.table, "Shortcuts")
        self.problem = QLabel("")
        self.problem.setStyleSheet("color:#c33")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(tabs)
        lay.addWidget(self.problem)
        lay.addWidget(buttons)

    def _choose_models(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Models folder", self.models.text())
        if d:
            self.models.setText(d)

    def _open_models(self) -> None:
        p = Path(self.models.text())
        p.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(p)))

    def shortcut_values(self) -> dict[str, str]:
        return {aid: (self.table.item(r, 1).text().strip() if self.table.item(r, 1) else "")
                for r, aid in enumerate(self._ids)}

    def validate(self) -> str | None:
        """A problem with the entered values, or None."""
        seen: dict[str, str] = {}
        for aid, text in self.shortcut_values().items():
            if not text:
                continue
            seq = QKeySequence(text)
            if seq.isEmpty() or seq.toString() == "":
                return f"'{text}' is not a valid shortcut"
            key = seq.toString()
            if key in seen:
                return f"{key} is given to both '{seen[key]}' and '{aid}'"
            seen[key] = aid
        return None

    def accept(self) -> None:
        problem = self.validate()
        if problem:
            self.problem.setText(problem)
            return
        s = self.settings
        s.set("device", self.device.currentText())
        s.set("undo_budget_mb", self.undo_mb.value())
        s.set("autosave_seconds", self.autosave.value())
        from engine.paths import user_models_dir

        chosen = self.models.text().strip()
        s.set("models_dir", "" if not chosen or Path(chosen) == user_models_dir() else chosen)
        defaults = {aid: act.property("default_shortcut") or "" for aid, act in self.actions.items()}
        s.set("shortcuts", {aid: v for aid, v in self.shortcut_values().items() if v != defaults.get(aid, "")})
        super().accept()


def remember_default_shortcuts(actions: dict) -> None:
    for act in actions.values():
        if act.property("default_shortcut") is None:
            act.setProperty("default_shortcut", act.shortcut().toString())


def apply_preferences(win) -> None:
    """Put the saved preferences into effect in a running main window."""
    import os

    s = win.settings
    win.doc.undo_budget = int(s.get("undo_budget_mb", DEFAULTS["undo_budget_mb"])) << 20
    win.set_autosave_interval(int(s.get("autosave_seconds", DEFAULTS["autosave_seconds"])))
    md = s.get("models_dir")
    if md:
        os.environ["SEMSTUDIO_MODELS_DIR"] = md
    else:
        os.environ.pop("SEMSTUDIO_MODELS_DIR", None)
    remember_default_shortcuts(win.actions_)
    custom = s.get("shortcuts", {}) or {}
    for aid, act in win.actions_.items():
        act.setShortcut(QKeySequence(custom.get(aid, act.property("default_shortcut") or "")))

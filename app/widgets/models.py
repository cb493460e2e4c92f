"""Model manager: bundled and imported models with their state and card, import, folder, unload all.

Everything that reads weights (checking hashes, inspecting a checkpoint, copying it) runs on the engine
thread; the dialog only reads small card files itself, so it never stalls the window.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QMessageBox,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QTextBrowser, QVBoxLayout)

GENERATORS = ("spade", "pix2pixhd", "groupdnet", "sflow")
STATE_COLOURS = {"ok": QColor(40, 140, 60), "missing": QColor(190, 60, 40), "mismatch": QColor(190, 60, 40),
                 "invalid": QColor(190, 60, 40)}


def card_summary(card: dict, entry: dict) -> str:
    """The card as a short HTML page: what the model is, what it can do, where it came from."""
    from html import escape

    rows = [("Family", card.get("family")), ("Label set", card.get("labelset")),
            ("Resolution", "×".join(str(v) for v in card.get("resolution") or []) or None),
            ("State", entry.get("state") + (f" — {entry['detail']}" if entry.get("detail") else "")),
            ("Where", f"{entry.get('where')}: {entry.get('path')}")]
    caps = card.get("capabilities") or {}
    if caps:
        rows.append(("Capabilities", ", ".join(k.replace("_", " ") for k, v in sorted(caps.items()) if v) or "none"))
    if card.get("labelset"):
        try:
            from engine.labels import get_labelset

            ls = get_labelset(card["labelset"])
            rows.append(("Classes", f"{ls.num_classes}: " + ", ".join(ls.names()[:24]) +
                         (" …" if ls.num_indices > 24 else "")))
        except KeyError:
            rows.append(("Classes", f"label set '{card['labelset']}' is not installed"))
    lic = card.get("licence") or card.get("license")
    if isinstance(lic, dict):
        lic = " ".join(f"{k}: {v}" for k, v in lic.items())
    rows.append(("Licence", lic or "not stated in the card"))
    metrics = ("images", "pixel_accuracy", "miou", "oracle_miou", "miou_ratio", "fd_vgg", "warp_error",
               "attribute_accuracy", "ssim_outside")
    for where, ev in (card.get("eval") or {}).items():
        if isinstance(ev, dict):
            rows.append((f"Evaluation ({where})", "; ".join(f"{k.replace('_', ' ')} {_fmt(ev[k])}" for k in metrics
                                                             if ev.get(k) is not None)))
    tr = card.get("training")
    if isinstance(tr, dict) and tr:
        rows.append(("Training", "; ".join(f"{k.replace('_', ' ')} {_fmt(tr[k])}" for k in
                                           ("data", "steps", "batch", "cpu_hours", "wall_hours", "device")
                                           if tr.get(k) is not None)))
    html = "".join(f"<tr><td valign='top'><b>{escape(k)}</b></td><td>{escape(str(v))}</td></tr>"
                   for k, v in rows if v is not None)
    title = escape(str(card.get("title") or entry.get("name")))
    desc = escape(str(card.get("description", "")))
    return f"<h3>{title}</h3><p>{desc}</p><table cellspacing='4'>{html}</table>"


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


class ModelManagerDialog(QDialog):
    model_chosen = Signal(str, dict)         # model folder, its card
    refreshed = Signal(list)                 # the catalogue shown
    imported = Signal(str)                   # folder of a newly imported model
    unloaded = Signal(list)                  # names released

    def __init__(self, client, current: str | None = None, parent=None, interactive: bool = True):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.client, self.current, self.interactive = client, current, interactive
        self.entries: list[dict] = []
        self._jobs: dict[int, tuple] = {}
        self.last_error: str | None = None
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Model", "Family", "Label set", "State", "Where"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.details = QTextBrowser()
        self.status = QLabel("Reading the models…")
        self.use_btn = QPushButton("Use for Generation")
        self.import_btn = QPushButton("Import…")
        self.folder_btn = QPushButton("Open Models Folder")
        self.unload_btn = QPushButton("Unload All")
        self.refresh_btn = QPushButton("Refresh")
        close = QPushButton("Close")
        self.use_btn.setToolTip("Generate with this model (its label set must match the document, or convert)")
        self.import_btn.setToolTip("Inspect a checkpoint (.pth, .safetensors) or model folder, then copy it in")
        self.unload_btn.setToolTip("Release every loaded model and its memory")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setSizes([260, 220])
        row = QHBoxLayout()
        for b in (self.use_btn, self.import_btn, self.folder_btn, self.unload_btn, self.refresh_btn):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.status)
        lay.addLayout(row)
        self.resize(760, 560)
        self.table.itemSelectionChanged.connect(self._show_details)
        self.use_btn.clicked.connect(lambda: self.use_selected())
        self.import_btn.clicked.connect(lambda: self.import_file())
        self.folder_btn.clicked.connect(self.open_folder)
        self.unload_btn.clicked.connect(self.unload_all)
        self.refresh_btn.clicked.connect(self.refresh)
        close.clicked.connect(self.close)
        client.event.connect(self._on_event)
        self.refresh()

    # ---- engine jobs ---------------------------------------------------------------------------
    def _submit(self, what: str, fn, *extra) -> int:
        from engine.api import CallableRequest

        job = self.client.submit(CallableRequest(fn=lambda ctx: fn(), name=what))
        self._jobs[job] = (what, *extra)
        return job

    def _on_event(self, ev) -> None:
        if ev.job_id not in self._jobs or ev.kind not in ("result", "error", "cancelled"):
            return
        what, *extra = self._jobs.pop(ev.job_id)
        if ev.kind != "result":
            self._fail({"inspect": "Cannot import", "import": "Cannot import"}.get(what, "Model error"),
                       ev.error or "cancelled")
            return
        if what == "catalog":
            self._fill(ev.result)
        elif what == "inspect":
            self._confirm_import(extra[0], ev.result)
        elif what == "import":
            self.status.setText(f"imported {Path(ev.result).name}")
            self.imported.emit(str(ev.result))
            self.refresh()
        elif what == "unload":
            self.status.setText("released: " + (", ".join(ev.result) if ev.result else "nothing was loaded"))
            self.unloaded.emit(list(ev.result))

    def _fail(self, title: str, msg: str) -> None:
        self.last_error = msg
        self.status.setText(f"{title}: {msg}")
        if self.interactive:
            QMessageBox.warning(self, title, msg)

    # ---- catalogue -----------------------------------------------------------------------------
    def refresh(self) -> int:
        from engine.registry import catalog

        self.status.setText("Reading the models (checking file hashes)…")
        return self._submit("catalog", catalog)

    def _fill(self, entries: list[dict]) -> None:
        self.entries = entries
        self.table.setRowCount(len(entries))
        for r, e in enumerate(entries):
            name = e["name"] + ("  (in use)" if self.current and Path(self.current).name == e["name"] else "")
            cells = [name, e.get("family") or "", e.get("labelset") or "", e["state"], e["where"]]
            for c, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if c == 3:
                    it.setForeground(STATE_COLOURS.get(e["state"], QColor(0, 0, 0)))
                    if e.get("detail"):
                        it.setToolTip(e["detail"])
                self.table.setItem(r, c, it)
        n_bad = sum(e["state"] != "ok" for e in entries)
        self.status.setText(f"{len(entries)} models" + (f", {n_bad} with problems (select one for details)"
                                                        if n_bad else ", all ok"))
        if entries and not self.table.selectedItems():
            self.table.selectRow(0)
        self.refreshed.emit(entries)

    def selected(self) -> dict | None:
        rows = {i.row() for i in self.table.selectedItems()}
        return self.entries[rows.pop()] if rows and self.entries else None

    def select(self, name: str) -> bool:
        for r, e in enumerate(self.entries):
            if e["name"] == name:
                self.table.selectRow(r)
                return True
        return False

    def _card(self, e: dict) -> dict:
        from engine.cards import ModelError, read_card

        try:
            return read_card(e["path"])
        except ModelError:
            return {}

    def _show_details(self) -> None:
        e = self.selected()
        if e is None:
            self.details.clear()
            return
        card = self._card(e)
        self.details.setHtml(card_summary(card, e))
        self.use_btn.setEnabled(e["state"] == "ok" and e.get("family") in GENERATORS)

    # ---- actions -------------------------------------------------------------------------------
    def use_selected(self) -> bool:
        e = self.selected()
        if e is None or e["state"] != "ok" or e.get("family") not in GENERATORS:
            self._fail("Cannot use this model", "choose a generator whose state is ok" if e else "choose a model")
            return False
        self.current = e["path"]
        self.model_chosen.emit(e["path"], self._card(e))
        self._fill(self.entries)
        return True

    def import_file(self, path: str | None = None, labelset: str | None = None, confirm: bool | None = None) -> int | None:
        """Inspect ``path`` on the engine thread, show what it is, then copy it into the models folder."""
        from engine.cards import inspect_file

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import a model", "",
                                                  "Checkpoints (*.pth *.pt *.safetensors *.ckpt);;All files (*)")
            if not path:
                return None
        self._import_opts = {"labelset": labelset, "confirm": confirm}
        self.status.setText(f"inspecting {Path(path).name}…")
        return self._submit("inspect", lambda: inspect_file(path) if Path(path).is_file() else {"folder": True},
                            path)

    def _confirm_import(self, path: str, info: dict) -> None:
        from engine.labels import available_labelsets
        from engine.registry import import_model

        opts = getattr(self, "_import_opts", {})
        labelset = opts.get("labelset")
        if not info.get("folder"):
            labelset = labelset or info.get("labelset")
            if not labelset:
                if not self.interactive:
                    self._fail("Cannot import", f"{Path(path).name}: its label set cannot be inferred; choose one")
                    return
                labelset, ok = QInputDialog.getItem(self, "Label set", f"{Path(path).name} does not say its label "
                                                    "set. Which one does it use?", available_labelsets(), 0, False)
                if not ok:
                    return
            text = (f"{Path(path).name}: {info.get('family')} generator, label set {labelset}, "
                    f"options {info.get('options')}. Copy it into your models folder?")
        else:
            text = f"Copy the model folder {Path(path).name} into your models folder?"
        confirm = opts.get("confirm")
        if confirm is None:
            confirm = QMessageBox.question(self, "Import model", text) == QMessageBox.StandardButton.Yes
        self.details.setPlainText(text)
        if confirm:
            self.status.setText(f"importing {Path(path).name}…")
            self._submit("import", lambda: str(import_model(path, labelset=labelset if not info.get("folder")
                                                            else None)))

    def open_folder(self) -> Path:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        from engine.paths import user_models_dir

        d = user_models_dir()
        d.mkdir(parents=True, exist_ok=True)
        if self.interactive:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(d)))
        return d

    def unload_all(self) -> int:
        from engine.api import UnloadRequest

        job = self.client.submit(UnloadRequest())
        self._jobs[job] = ("unload",)
        self.status.setText("releasing the loaded models…")
        return job

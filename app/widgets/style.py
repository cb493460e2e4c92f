"""Style controls for the loaded generator, shown only where its card says it can use them.

- seed and "randomise" (every model that samples: SPADE VAE, GroupDNet, pix2pixHD features);
- a reference photo (``style_image``: the SPADE style encoder, the pix2pixHD feature encoder);
- per class (``per_class_style``: GroupDNet): reroll a class's code, lock it, or mix old and new;
- per instance (``per_instance_style``: pix2pixHD feature clusters): a cluster for each instance,
  chosen from swatches of what each cluster makes of it, or randomised.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QSlider, QSpinBox, QTableWidget, QVBoxLayout, QWidget)

from .jobs import thumbnail_icon


class StylePanel(QWidget):
    changed = Signal()                       # any control changed (live preview regenerates)
    swatches_requested = Signal(int)         # instance id whose cluster swatches should be rendered

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.caps: dict = {}
        self.card: dict = {}
        self.n_clusters: dict[int, int] = {}          # class index -> number of feature clusters
        self.style_image: np.ndarray | None = None
        self.class_styles: dict[int, tuple[int, float]] = {}
        self.class_locks: dict[int, int] = {}
        self.instance_clusters: dict[int, int] = {}
        self.swatches: dict[int, list[np.ndarray]] = {}   # instance id -> crop per cluster
        self._rng = np.random.default_rng()
        self.info = QLabel()
        self.info.setWordWrap(True)
        # seed
        self.seed_box = QGroupBox("Seed")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=int(doc.settings.get("seed", 0)))
        self.dice = QPushButton("Randomise")
        self.dice.setToolTip("A new seed: another sample of the same scene")
        r = QHBoxLayout(self.seed_box)
        r.addWidget(self.seed, 1)
        r.addWidget(self.dice)
        # reference photo
        self.ref_box = QGroupBox("Style from a photo")
        self.ref_thumb = QLabel("none")
        self.ref_thumb.setMinimumHeight(64)
        self.ref_pick = QPushButton("Choose Photo…")
        self.ref_clear = QPushButton("Clear")
        r = QHBoxLayout(self.ref_box)
        r.addWidget(self.ref_thumb, 1)
        r.addWidget(self.ref_pick)
        r.addWidget(self.ref_clear)
        # per class
        self.class_box = QGroupBox("Class styles")
        self.class_table = QTableWidget(0, 4)
        self.class_table.setHorizontalHeaderLabels(["Class", "", "Lock", "Mix"])
        self.class_table.verticalHeader().setVisible(False)
        self.reroll_all = QPushButton("Reroll Unlocked")
        v = QVBoxLayout(self.class_box)
        v.addWidget(self.class_table)
        v.addWidget(self.reroll_all)
        # per instance
        self.inst_box = QGroupBox("Instance styles")
        self.inst_table = QTableWidget(0, 3)
        self.inst_table.setHorizontalHeaderLabels(["Instance", "Cluster", ""])
        self.inst_table.verticalHeader().setVisible(False)
        self.inst_random = QPushButton("Randomise Instances")
        v = QVBoxLayout(self.inst_box)
        v.addWidget(self.inst_table)
        v.addWidget(self.inst_random)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        for w in (self.info, self.seed_box, self.ref_box, self.class_box, self.inst_box):
            lay.addWidget(w)
        lay.addStretch(1)
        self.seed.valueChanged.connect(self._on_seed)
        self.dice.clicked.connect(self.randomise)
        self.ref_pick.clicked.connect(lambda: self.choose_reference())
        self.ref_clear.clicked.connect(lambda: self.set_reference(None))
        self.reroll_all.clicked.connect(self.reroll_unlocked)
        self.inst_random.clicked.connect(self.randomise_instances)
        self._rows_timer = QTimer(self)
        self._rows_timer.setSingleShot(True)
        self._rows_timer.setInterval(400)
        self._rows_timer.timeout.connect(self.refresh_rows)
        doc.labels_changed.connect(lambda _r: self._rows_timer.start())
        doc.layer_changed.connect(lambda name, _r: name == "instances" and self._rows_timer.start())
        doc.layers_changed.connect(self._rows_timer.start)
        self.set_card({})

    # ---- what the model can do -----------------------------------------------------------------
    def set_card(self, card: dict, clusters: dict | None = None) -> None:
        self.card = card or {}
        caps = self.caps = dict(self.card.get("capabilities") or {})
        self.n_clusters = {int(c): int(len(v)) for c, v in (clusters or {}).items()}
        samples = bool(caps.get("multimodal") or caps.get("per_class_style") or caps.get("per_instance_style"))
        self.seed_box.setVisible(samples)
        self.ref_box.setVisible(bool(caps.get("style_image")))
        self.class_box.setVisible(bool(caps.get("per_class_style")))
        self.inst_box.setVisible(bool(caps.get("per_instance_style")) and bool(self.n_clusters))
        shown = [b.title() for b in (self.seed_box, self.ref_box, self.class_box, self.inst_box) if not b.isHidden()]
        name = self.card.get("title") or self.card.get("name") or "this model"
        self.info.setText(f"{name}: " + (", ".join(shown).lower() if shown else
                                         "no style controls (it makes one image per label map)"))
        self.refresh_rows()

    # ---- seed ----------------------------------------------------------------------------------
    def _on_seed(self, v: int) -> None:
        self.doc.settings["seed"] = int(v)
        self.changed.emit()

    def randomise(self) -> int:
        self.seed.setValue(int(self._rng.integers(0, 2**31 - 1)))
        return self.seed.value()

    # ---- reference photo -----------------------------------------------------------------------
    def choose_reference(self, path: str | None = None) -> bool:
        from engine.labels.io import open_image

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Style photo", "", "Images (*.png *.jpg *.jpeg *.bmp *.tif)")
            if not path:
                return False
        try:
            img = np.array(open_image(path).convert("RGB"))
        except (OSError, ValueError) as e:
            self.info.setText(f"cannot use {path}: {e}")
            return False
        self.set_reference(img)
        return True

    def set_reference(self, img: np.ndarray | None) -> None:
        self.style_image = img
        if img is None:
            self.ref_thumb.setPixmap(__import__("PySide6.QtGui", fromlist=["QPixmap"]).QPixmap())
            self.ref_thumb.setText("none")
        else:
            self.ref_thumb.setPixmap(thumbnail_icon(img, 64).pixmap(QSize(96, 64)))
        self.changed.emit()

    # ---- rows for the classes and instances in the picture -------------------------------------
    def present_classes(self) -> list[int]:
        ls = self.doc.labelset
        counts = np.bincount(self.doc.labels.reshape(-1), minlength=ls.num_indices)
        return [i for i in range(ls.num_indices) if counts[i] and i != ls.void_index]

    def present_instances(self) -> list[tuple[int, int]]:
        """(instance id, its class) for every instance on the canvas."""
        inst = self.doc.instances
        if inst is None:
            return []
        ids = np.unique(inst)
        ids = ids[ids > 0]
        flat_i, flat_l = inst.reshape(-1), self.doc.labels.reshape(-1)
        first = {int(i): int(flat_l[np.flatnonzero(flat_i == i)[0]]) for i in ids[:200]}
        return sorted(first.items())

    def refresh_rows(self) -> None:
        if not self.class_box.isHidden():
            self._fill_classes()
        if not self.inst_box.isHidden():
            self._fill_instances()

    def _fill_classes(self) -> None:
        from .palette import swatch

        ls = self.doc.labelset
        rows = self.present_classes()
        t = self.class_table
        t.setRowCount(len(rows))
        for r, c in enumerate(rows):
            from PySide6.QtWidgets import QTableWidgetItem

            t.setItem(r, 0, QTableWidgetItem(swatch(ls.classes[c].color), ls.classes[c].name))
            btn = QPushButton("Reroll")
            btn.clicked.connect(lambda _=False, c=c: self.reroll_class(c))
            t.setCellWidget(r, 1, btn)
            lock = QCheckBox()
            lock.setChecked(c in self.class_locks)
            lock.toggled.connect(lambda on, c=c: self.lock_class(c, on))
            t.setCellWidget(r, 2, lock)
            mix = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
            mix.setValue(int(round(100 * self.class_styles.get(c, (0, 0.0))[1])))
            mix.setToolTip("0: the class's own code, 100: the rerolled one; between: a blend")
            mix.valueChanged.connect(lambda v, c=c: self.mix_class(c, v / 100))
            t.setCellWidget(r, 3, mix)
        t.resizeColumnsToContents()

    def reroll_class(self, c: int) -> None:
        self.class_styles[c] = (int(self._rng.integers(0, 2**31 - 1)), 1.0)
        self._fill_classes()
        self.changed.emit()

    def lock_class(self, c: int, on: bool) -> None:
        if on:
            self.class_locks[c] = self.seed.value()
        else:
            self.class_locks.pop(c, None)
        self.changed.emit()

    def mix_class(self, c: int, t: float) -> None:
        seed = self.class_styles.get(c, (int(self._rng.integers(0, 2**31 - 1)), 0.0))[0]
        if t <= 0:
            self.class_styles.pop(c, None)
        else:
            self.class_styles[c] = (seed, float(t))
        self.changed.emit()

    def reroll_unlocked(self) -> None:
        """A new seed; locked classes keep their look."""
        self.blockSignals(True)
        self.randomise()
        self.blockSignals(False)
        self.changed.emit()

    def _fill_instances(self) -> None:
        from PySide6.QtWidgets import QTableWidgetItem

        ls = self.doc.labelset
        rows = self.present_instances()
        t = self.inst_table
        t.setRowCount(len(rows))
        self._inst_boxes: dict[int, QComboBox] = {}
        for r, (iid, c) in enumerate(rows):
            t.setItem(r, 0, QTableWidgetItem(f"#{iid} {ls.classes[c].name}"))
            box = QComboBox()
            box.addItem("automatic", -1)
            for k in range(self.n_clusters.get(c, 0)):
                box.addItem(f"cluster {k + 1}", k)
            box.setCurrentIndex(box.findData(self.instance_clusters.get(iid, -1)))
            box.setIconSize(QSize(48, 36))
            for k, img in enumerate(self.swatches.get(iid, [])):
                if box.findData(k) >= 0:
                    box.setItemIcon(box.findData(k), thumbnail_icon(img, 48))
            box.currentIndexChanged.connect(lambda _i, iid=iid, box=box: self.set_instance_cluster(
                iid, box.currentData()))
            t.setCellWidget(r, 1, box)
            btn = QPushButton("Swatches")
            btn.setToolTip("Render what each cluster makes of this instance")
            btn.setEnabled(self.n_clusters.get(c, 0) > 0)
            btn.clicked.connect(lambda _=False, iid=iid: self.swatches_requested.emit(iid))
            t.setCellWidget(r, 2, btn)
            self._inst_boxes[iid] = box
        t.resizeColumnsToContents()

    def set_instance_cluster(self, iid: int, k: int | None) -> None:
        if k is None or k < 0:
            self.instance_clusters.pop(iid, None)
        else:
            self.instance_clusters[int(iid)] = int(k)
        self.changed.emit()

    def show_swatches(self, iid: int, images: list[np.ndarray]) -> None:
        """Icons for the cluster choices of instance ``iid`` (crops of the instance per cluster)."""
        self.swatches[iid] = list(images)
        box = getattr(self, "_inst_boxes", {}).get(iid)
        if box is None:
            return
        for k, img in enumerate(images):
            i = box.findData(k)
            if i >= 0:
                box.setItemIcon(i, thumbnail_icon(img, 48))

    def randomise_instances(self) -> None:
        for iid, c in self.present_instances():
            n = self.n_clusters.get(c, 0)
            if n:
                self.instance_clusters[iid] = int(self._rng.integers(0, n))
        self._fill_instances()
        self.changed.emit()

    # ---- the generation's inputs ---------------------------------------------------------------
    def controls(self):
        """(seed, engine StyleControls) for the next generation."""
        from engine.registry import StyleControls

        caps = self.caps
        return self.seed.value(), StyleControls(
            style_image=self.style_image if caps.get("style_image") else None,
            class_styles=dict(self.class_styles) if caps.get("per_class_style") and self.class_styles else None,
            class_locks=dict(self.class_locks) if caps.get("per_class_style") and self.class_locks else None,
            instance_clusters=dict(self.instance_clusters) if caps.get("per_instance_style") and
            self.instance_clusters else None)

    def key(self) -> str:
        """A fingerprint of the controls (the live preview regenerates when it changes)."""
        img = self.style_image
        return repr((self.seed.value(), sorted(self.class_styles.items()), sorted(self.class_locks.items()),
                     sorted(self.instance_clusters.items()),
                     None if img is None else (img.shape, int(img[::17, ::17].sum()))))

"""The label canvas: zoom (Ctrl+wheel), pan (Space-drag, middle-drag), painting tools, cursor outline.

Rendering keeps an RGBA copy of the labels (:class:`LabelColorizer`) that is recoloured through a
LUT for the edit's bounding box only, and asks Qt to repaint only that rectangle on screen.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ..model.document import Document
from ..model.painting import LabelColorizer

TOOLS = ("brush", "eraser", "fill", "picker", "line", "polygon", "lasso", "select", "merge", "split")


def _qimage_rgba(arr: np.ndarray) -> QImage:
    img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], QImage.Format.Format_RGBA8888)
    img._keep = arr
    return img


def _qimage_rgb(arr: np.ndarray) -> QImage:
    arr = np.ascontiguousarray(arr)
    img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], QImage.Format.Format_RGB888)
    img._keep = arr  # keep the buffer alive as long as the image
    return img


class CanvasView(QWidget):
    picked = Signal(int)                  # eyedropper picked a class
    instance_changed = Signal(int)        # the current instance id (picked, new, merge target)
    message = Signal(str)                 # a one-line note for the status bar (locked layer, ...)
    cursor_moved = Signal(int, int)       # image coordinates
    tool_changed = Signal(str)
    brush_size_changed = Signal(int)
    select_requested = Signal(tuple)      # smart select: the dragged rectangle (x0, y0, x1, y1), image pixels

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.tool = "brush"
        self.brush_size = 24
        self.brush_shape = "round"
        self.current_class = 0
        self.fill_contiguous = True
        self.active_layer = "labels"                  # labels | instances | edges: what brushes paint
        self.current_instance = 1
        self.merge_target: int | None = None
        self.pressure: float | None = None            # tablet pressure of the stroke, None for a mouse
        self.scale = 1.0
        self.offset = QPointF(0, 0)
        self._panning = False
        self._space = False
        self._last_pan = None
        self._painting = False
        self._mouse = None
        self._shape: list[tuple[float, float]] = []   # line / polygon / lasso / select points in progress
        self.preserve: str | None = None              # preserve-labels mode: None | "void" | "class"
        self.preserve_class: int | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self._rebuild()
        doc.labels_changed.connect(self._on_labels_changed)
        doc.layer_changed.connect(self._on_layer_changed)
        doc.layers_changed.connect(self._rebuild)
        doc.layer_props_changed.connect(self._on_props_changed)

    # ---- layer properties (the document holds them; these are shortcuts) ----------------------
    @property
    def show_result(self) -> bool:
        return self.doc.layer_props["result"].visible

    @show_result.setter
    def show_result(self, on: bool) -> None:
        self.doc.layer_props["result"].visible = bool(on)

    @property
    def label_opacity(self) -> float:
        return self.doc.layer_props["labels"].opacity

    @label_opacity.setter
    def label_opacity(self, v: float) -> None:
        self.doc.layer_props["labels"].opacity = float(v)

    # ---- rendering ---------------------------------------------------------------------------
    def _rebuild(self) -> None:
        from ..model.painting import InstanceOverlay, edge_lut

        d = self.doc
        self.colorizer = LabelColorizer(d.labels, d.labelset.palette())
        self._images: dict[str, QImage] = {"labels": _qimage_rgba(self.colorizer.rgba)}
        self.overlays: dict[str, LabelColorizer] = {}
        if d.instances is not None:
            self.overlays["instances"] = InstanceOverlay(d.instances)
        if d.edges is not None:
            self.overlays["edges"] = LabelColorizer(d.edges, None, lut=edge_lut())
        for name, ov in self.overlays.items():
            self._images[name] = _qimage_rgba(ov.rgba)
        self._rebuild_mask()
        if d.photo is not None:
            self._images["photo"] = _qimage_rgb(d.photo)
        if d.result is not None:
            self._images["result"] = _qimage_rgb(d.result)
        self.update()

    def set_onion(self, labels: np.ndarray | None) -> None:
        """Onion skin: another frame's labels drawn faintly over this one (None: off)."""
        if labels is None or labels.shape != self.doc.labels.shape:
            self._onion_img = None
        else:
            rgba = np.empty(labels.shape + (4,), np.uint8)
            rgba[..., :3] = self.doc.labelset.palette()[labels.astype(np.intp)]
            rgba[..., 3] = 255
            self._onion_img = _qimage_rgba(rgba)
        self.update()

    def _rebuild_mask(self) -> None:
        """The changed-region layer (where labels differ from the photo's own), built only when shown."""
        from ..model.painting import mask_lut

        self._mask = None
        self._images.pop("mask", None)
        if self.doc.layer_props["mask"].visible and self.doc.base_labels is not None:
            m = self.doc.changed_since_base()
            if m is not None:
                self._mask = LabelColorizer(m.view(np.uint8), None, lut=mask_lut())
                self._images["mask"] = _qimage_rgba(self._mask.rgba)

    @property
    def _label_img(self) -> QImage:
        return self._images["labels"]

    def _on_labels_changed(self, rect) -> None:
        if rect is None or self.colorizer.labels is not self.doc.labels:
            self._rebuild()
            return
        hint, self.doc.fill_hint = self.doc.fill_hint, None
        if hint is not None and tuple(hint[0]) == tuple(rect):
            self.colorizer.update_mask(rect, hint[1], hint[2])     # a fill: one colour, changed pixels only
        else:
            self.colorizer.update(rect)
        if self._mask is not None:
            x0, y0, x1, y1 = rect
            base = self.doc.base_labels
            self._mask.labels[y0:y1, x0:x1] = (base[y0:y1, x0:x1] != self.doc.labels[y0:y1, x0:x1])
            self._mask.update(rect)
        self._update_image_rect(rect)

    def _on_layer_changed(self, name: str, rect) -> None:
        ov = self.overlays.get(name)
        if ov is None or rect is None or ov.labels is not self.doc.layer(name):
            self._rebuild()
            return
        ov.update(rect)
        self._update_image_rect(rect, pad=2)

    def _update_image_rect(self, rect, pad: int = 0) -> None:
        x0, y0, x1, y1 = rect
        self.update(self.image_to_widget_rect(QRectF(x0 - pad, y0 - pad, x1 - x0 + 2 * pad,
                                                     y1 - y0 + 2 * pad)).adjusted(-2, -2, 2, 2))

    def _on_props_changed(self) -> None:
        if self.doc.layer_props["mask"].visible != (self._mask is not None):
            self._rebuild_mask()
        self.update()

    def image_to_widget_rect(self, r: QRectF) -> QRect:
        return QRectF(r.x() * self.scale + self.offset.x(), r.y() * self.scale + self.offset.y(),
                      r.width() * self.scale, r.height() * self.scale).toAlignedRect()

    def widget_to_image(self, p: QPointF) -> tuple[float, float]:
        return (p.x() - self.offset.x()) / self.scale, (p.y() - self.offset.y()) / self.scale

    def fit(self) -> None:
        w, h = self.doc.size
        if w == 0 or h == 0 or self.width() < 10:
            return
        self.scale = min(self.width() / w, self.height() / h) * 0.98
        self.offset = QPointF((self.width() - w * self.scale) / 2, (self.height() - h * self.scale) / 2)
        self.update()

    def zoom_at(self, factor: float, anchor: QPointF | None = None) -> None:
        anchor = anchor or QPointF(self.width() / 2, self.height() / 2)
        ix, iy = self.widget_to_image(anchor)
        self.scale = float(np.clip(self.scale * factor, 0.05, 64.0))
        self.offset = QPointF(anchor.x() - ix * self.scale, anchor.y() - iy * self.scale)
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(ev.rect(), QColor(48, 48, 52))
        w, h = self.doc.size
        target = QRectF(self.offset.x(), self.offset.y(), w * self.scale, h * self.scale)
        # only the exposed part of the image is drawn
        exposed = QRectF(ev.rect()).intersected(target)
        if exposed.isEmpty():
            p.end()
            return
        src = QRectF((exposed.x() - self.offset.x()) / self.scale, (exposed.y() - self.offset.y()) / self.scale,
                     exposed.width() / self.scale, exposed.height() / self.scale)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.fillRect(exposed, QColor(20, 20, 20))
        for name in self.doc.layer_order:                   # bottom to top
            props = self.doc.layer_props[name]
            img = self._images.get(name)
            if img is None or not props.visible or props.opacity <= 0:
                continue
            p.setOpacity(props.opacity)
            if img.width() != w or img.height() != h:       # a result at the model's resolution
                sx, sy = img.width() / w, img.height() / h
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                p.drawImage(exposed, img, QRectF(src.x() * sx, src.y() * sy, src.width() * sx, src.height() * sy))
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            else:
                p.drawImage(exposed, img, src)
        if getattr(self, "_onion_img", None) is not None:
            p.setOpacity(0.35)
            p.drawImage(exposed, self._onion_img, src)
        p.setOpacity(1.0)
        if self._shape:
            self._paint_shape(p)
        if self._mouse is not None and self.tool in ("brush", "eraser"):
            d = self.brush_size * self.scale
            c = self._mouse
            p.setPen(QPen(QColor(0, 0, 0), 1))
            p.drawEllipse(QPointF(c.x(), c.y()), d / 2 + 1, d / 2 + 1) if self.brush_shape == "round" else \
                p.drawRect(QRectF(c.x() - d / 2 - 1, c.y() - d / 2 - 1, d + 2, d + 2))
            p.setPen(QPen(QColor(255, 255, 255), 1))
            p.drawEllipse(QPointF(c.x(), c.y()), d / 2, d / 2) if self.brush_shape == "round" else \
                p.drawRect(QRectF(c.x() - d / 2, c.y() - d / 2, d, d))
        p.end()

    def _to_widget(self, pt) -> QPointF:
        return QPointF(pt[0] * self.scale + self.offset.x(), pt[1] * self.scale + self.offset.y())

    def _paint_shape(self, p: QPainter) -> None:
        """The shape being drawn: polygon/lasso outline, line, or the smart-select rectangle."""
        from PySide6.QtGui import QPolygonF

        pts = [self._to_widget(q) for q in self._shape]
        if self._mouse is not None and self.tool in ("polygon", "line", "select", "split"):
            pts.append(self._mouse)
        for colour, width in ((QColor(0, 0, 0), 3), (QColor(255, 255, 255), 1)):
            p.setPen(QPen(colour, width, Qt.PenStyle.SolidLine if width == 1 else Qt.PenStyle.SolidLine))
            if self.tool == "select" and len(pts) >= 2:
                p.drawRect(QRectF(pts[0], pts[-1]).normalized())
            elif len(pts) >= 2:
                p.drawPolyline(QPolygonF(pts))

    def _protect(self):
        from ..tools.shapes import protect_lut

        ls = self.doc.labelset
        return protect_lut(ls.num_indices, self.preserve, ls.erase_index, self.preserve_class)

    def finish_shape(self) -> None:
        """Close the polygon / lasso and fill it with the current class (one undo step)."""
        from ..tools.shapes import polygon_mask

        pts, self._shape = self._shape, []
        w, h = self.doc.size
        res = polygon_mask(pts, w, h)
        if res is not None:
            self.fill_mask(res[0], res[1], "Lasso fill" if self.tool == "lasso" else "Polygon fill")
        self.update()

    def cancel_shape(self) -> None:
        self._shape = []
        self.update()

    def _cursor_rect(self, pos: QPointF) -> QRect:
        d = self.brush_size * self.scale + 6
        return QRectF(pos.x() - d / 2, pos.y() - d / 2, d, d).toAlignedRect()

    # ---- interaction -------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self._shape = []
        self.merge_target = None
        self.tool = tool
        self.tool_changed.emit(tool)
        self.update()

    def set_brush_size(self, size: int) -> None:
        self.brush_size = int(np.clip(size, 1, 1024))
        self.brush_size_changed.emit(self.brush_size)
        self.update()

    # ---- what a tool writes on the active layer ---------------------------------------------------
    def _paint_value(self) -> int:
        erase = self.tool == "eraser"
        if self.active_layer == "edges":
            return 0 if erase else 255
        if self.active_layer == "instances":
            return 0 if erase else self.current_instance
        return self.doc.labelset.erase_index if erase else self.current_class

    def _instance_value(self) -> int | None:
        """The instance id a label edit writes alongside (None when the instance layer is not in use):
        the current instance for a thing class, 0 for stuff and for the eraser."""
        if self.active_layer != "labels" or self.doc.instances is None:
            return None
        if self.tool == "eraser" or self.current_class not in self.doc.labelset.thing_indices():
            return 0
        return self.current_instance

    def _diameter(self) -> int:
        if self.pressure is None:
            return self.brush_size
        return max(1, int(round(self.brush_size * self.pressure)))   # pressure changes size only

    def _edit(self, fn, *args, **kw):
        """Run a document edit; a locked layer becomes a status message, not an exception."""
        from ..model.document import LayerLocked

        try:
            return fn(*args, **kw)
        except LayerLocked as e:
            self.message.emit(str(e)[0].upper() + str(e)[1:])
        except ValueError as e:
            self.message.emit(str(e))
        return None

    def fill_mask(self, rect, mask, text: str):
        """Fill a shape (line, polygon, lasso, smart select) on the active layer."""
        return self._edit(self.doc.fill_shape, rect, mask, self._paint_value(), text, self._protect(),
                          layer=self.active_layer, instance=self._instance_value())

    def new_instance(self) -> int:
        """Start a new instance (N): the next free id; strokes of thing classes write it."""
        self.doc.ensure_layer("instances")
        self.current_instance = self.doc.next_instance_id()
        self.instance_changed.emit(self.current_instance)
        return self.current_instance

    # ---- tablet --------------------------------------------------------------------------------
    def tabletEvent(self, ev) -> None:  # noqa: N802
        """Remember the pen pressure; Qt then delivers the same motion as mouse events."""
        from PySide6.QtCore import QEvent

        if ev.type() == QEvent.Type.TabletRelease:
            self.pressure = None
        else:
            pr = float(ev.pressure())
            self.pressure = min(1.0, max(0.05, pr)) if pr > 0 else None
        ev.ignore()

    def mousePressEvent(self, ev) -> None:  # noqa: N802
        pos = ev.position()
        if ev.button() == Qt.MouseButton.MiddleButton or (ev.button() == Qt.MouseButton.LeftButton and self._space):
            self._panning, self._last_pan = True, pos
            return
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        x, y = self.widget_to_image(pos)
        tool = "picker" if ev.modifiers() & Qt.KeyboardModifier.AltModifier else self.tool
        if tool == "picker":
            v = self.doc.pick(int(x), int(y))
            if v is not None:
                self.current_class = v
                self.picked.emit(v)
            k = self.doc.pick_instance(int(x), int(y))
            if k:
                self.current_instance = k
                self.instance_changed.emit(k)
        elif tool == "fill":
            if self.active_layer == "edges":
                self.message.emit("Fill works on the label and instance layers; use the brush for edges")
            else:
                self._edit(self.doc.fill, int(x), int(y), self._paint_value(), self.fill_contiguous,
                           layer=self.active_layer, instance=self._instance_value())
        elif tool == "merge":
            self._merge_click(int(x), int(y))
        elif tool == "polygon":
            self._shape.append((x, y))
            self.update()
        elif tool in ("line", "lasso", "select", "split"):
            self._shape = [(x, y)]
        else:
            self._edit(self.doc.begin_stroke, x, y, self._diameter(), self._paint_value(), self.brush_shape,
                       protect=self._protect(), layer=self.active_layer, instance=self._instance_value())
            self._painting = self.doc._stroke is not None

    def _merge_click(self, x: int, y: int) -> None:
        k = self.doc.pick_instance(x, y)
        if not k:
            self.message.emit("No instance there: merge clicks on instances (the first one is kept)")
            return
        if self.merge_target is None or self.merge_target == k or not (self.doc.instances == self.merge_target).any():
            self.merge_target = k
            self.current_instance = k
            self.instance_changed.emit(k)
            self.message.emit(f"Merging into instance {k}: click the instances to join it (Esc to stop)")
            return
        if self._edit(self.doc.merge_instances, self.merge_target, k) is not None:
            self.message.emit(f"Instance {k} merged into {self.merge_target}")

    def _split_release(self, p0, p1) -> None:
        """A click splits the instance under it into its connected parts; a drag cuts along the line."""
        from ..tools.shapes import line_mask

        w, h = self.doc.size
        if self.doc.instances is None:
            self.message.emit("There are no instances to split")
            return
        if np.hypot(p1[0] - p0[0], p1[1] - p0[1]) < 2:
            k, cut = self.doc.pick_instance(int(p0[0]), int(p0[1])), None
        else:
            cut = line_mask(p0, p1, 2, w, h, "round")
            if cut is None:
                return
            (x0, y0, x1, y1), m = cut
            ids = self.doc.instances[y0:y1, x0:x1][m]
            ids = ids[ids > 0]
            k = int(np.bincount(ids).argmax()) if ids.size else 0
        if not k:
            self.message.emit("No instance there to split")
            return
        if self._edit(self.doc.split_instance, k, cut) is None:
            self.message.emit(f"Instance {k} is one piece: drag a line across it to cut it")

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802
        pos = ev.position()
        old = self._mouse
        self._mouse = pos
        if self._panning and self._last_pan is not None:
            self.offset += pos - self._last_pan
            self._last_pan = pos
            self.update()
            return
        x, y = self.widget_to_image(pos)
        self.cursor_moved.emit(int(x), int(y))
        if self._painting:
            self.doc.continue_stroke(x, y, self._diameter() if self.pressure is not None else None)
        if self._shape and self.tool == "lasso" and ev.buttons() & Qt.MouseButton.LeftButton:
            self._shape.append((x, y))
        if self._shape:
            self.update()
        if old is not None:
            self.update(self._cursor_rect(old))
        self.update(self._cursor_rect(pos))

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802
        if self._panning:
            self._panning = False
            return
        if ev.button() == Qt.MouseButton.LeftButton and self._shape and \
                self.tool in ("line", "lasso", "select", "split"):
            x, y = self.widget_to_image(ev.position())
            if self.tool == "lasso":
                self.finish_shape()
            elif self.tool == "split":
                p0, self._shape = self._shape[0], []
                self._split_release(p0, (x, y))
                self.update()
            elif self.tool == "line":
                from ..tools.shapes import line_mask

                p0, self._shape = self._shape[0], []
                w, h = self.doc.size
                res = line_mask(p0, (x, y), self.brush_size, w, h, self.brush_shape)
                if res is not None:
                    self.fill_mask(res[0], res[1], "Line")
                self.update()
            else:
                (x0, y0), self._shape = self._shape[0], []
                r = (int(min(x0, x)), int(min(y0, y)), int(max(x0, x)) + 1, int(max(y0, y)) + 1)
                self.update()
                if r[2] - r[0] >= 3 and r[3] - r[1] >= 3:
                    self.select_requested.emit(r)
            return
        if self._painting and ev.button() == Qt.MouseButton.LeftButton:
            self._painting = False
            self.doc.end_stroke({"edges": "Sketch", "instances": "Instance stroke"}.get(
                self.active_layer, "Erase" if self.tool == "eraser" else "Brush stroke"))

    def leaveEvent(self, ev) -> None:  # noqa: N802
        if self._mouse is not None:
            self.update(self._cursor_rect(self._mouse))
        self._mouse = None

    def wheelEvent(self, ev) -> None:  # noqa: N802
        dy = ev.angleDelta().y()
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_at(1.25 if dy > 0 else 0.8, ev.position())
        else:
            self.offset += QPointF(ev.angleDelta().x() / 2, dy / 2)
            self.update()

    def mouseDoubleClickEvent(self, ev) -> None:  # noqa: N802
        if self.tool == "polygon" and self._shape:
            self.finish_shape()
        else:
            super().mouseDoubleClickEvent(ev)

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        if self._shape and ev.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tool == "polygon":
            self.finish_shape()
        elif self._shape and ev.key() == Qt.Key.Key_Escape:
            self.cancel_shape()
        elif ev.key() == Qt.Key.Key_Escape and self.merge_target is not None:
            self.merge_target = None
            self.message.emit("")
        elif ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif ev.key() == Qt.Key.Key_BracketLeft:
            self.set_brush_size(max(1, int(self.brush_size / 1.2)))
        elif ev.key() == Qt.Key.Key_BracketRight:
            self.set_brush_size(int(self.brush_size * 1.2) + 1)
        else:
            super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev) -> None:  # noqa: N802
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = False
            self.setCursor(Qt.CursorShape.CrossCursor)
        else:
            super().keyReleaseEvent(ev)

    def resizeEvent(self, ev) -> None:  # noqa: N802
        if ev.oldSize().width() <= 0:
            self.fit()
        super().resizeEvent(ev)

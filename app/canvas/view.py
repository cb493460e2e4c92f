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

TOOLS = ("brush", "eraser", "fill", "picker", "line", "polygon", "lasso", "select")


def _qimage_rgb(arr: np.ndarray) -> QImage:
    arr = np.ascontiguousarray(arr)
    img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], QImage.Format.Format_RGB888)
    img._keep = arr  # keep the buffer alive as long as the image
    return img


class CanvasView(QWidget):
    picked = Signal(int)                  # eyedropper picked a class
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
        self.label_opacity = 1.0
        self.show_result = False
        self.result_opacity = 1.0
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
        doc.layers_changed.connect(self._rebuild)

    # ---- rendering ---------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.colorizer = LabelColorizer(self.doc.labels, self.doc.labelset.palette())
        rgba = self.colorizer.rgba
        self._label_img = QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.strides[0],
                                 QImage.Format.Format_RGBA8888)
        self._photo_img = _qimage_rgb(self.doc.photo) if self.doc.photo is not None else None
        self._result_img = _qimage_rgb(self.doc.result) if self.doc.result is not None else None
        self.update()

    def _on_labels_changed(self, rect) -> None:
        if rect is None or self.colorizer.labels is not self.doc.labels:
            self._rebuild()
            return
        hint, self.doc.fill_hint = self.doc.fill_hint, None
        if hint is not None and tuple(hint[0]) == tuple(rect):
            self.colorizer.update_mask(rect, hint[1], hint[2])     # a fill: one colour, changed pixels only
        else:
            self.colorizer.update(rect)
        x0, y0, x1, y1 = rect
        self.update(self.image_to_widget_rect(QRectF(x0, y0, x1 - x0, y1 - y0)).adjusted(-2, -2, 2, 2))

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
        if self._photo_img is not None:
            p.drawImage(exposed, self._photo_img, src)
        else:
            p.fillRect(exposed, QColor(20, 20, 20))
        if self.show_result and self._result_img is not None:
            rw, rh = self._result_img.width(), self._result_img.height()
            sx, sy = rw / w, rh / h
            rsrc = QRectF(src.x() * sx, src.y() * sy, src.width() * sx, src.height() * sy)
            p.setOpacity(self.result_opacity)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(exposed, self._result_img, rsrc)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        if self.label_opacity > 0:
            p.setOpacity(self.label_opacity)
            p.drawImage(exposed, self._label_img, src)
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
        if self._mouse is not None and self.tool in ("polygon", "line", "select"):
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
            self.doc.fill_shape(res[0], res[1], self.current_class,
                                "Lasso fill" if self.tool == "lasso" else "Polygon fill", self._protect())
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
        self.tool = tool
        self.tool_changed.emit(tool)
        self.update()

    def set_brush_size(self, size: int) -> None:
        self.brush_size = int(np.clip(size, 1, 1024))
        self.brush_size_changed.emit(self.brush_size)
        self.update()

    def _paint_value(self) -> int:
        return self.doc.labelset.erase_index if self.tool == "eraser" else self.current_class

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
        elif tool == "fill":
            self.doc.fill(int(x), int(y), self.current_class, self.fill_contiguous)
        elif tool == "polygon":
            self._shape.append((x, y))
            self.update()
        elif tool in ("line", "lasso", "select"):
            self._shape = [(x, y)]
        else:
            self._painting = True
            self.doc.begin_stroke(x, y, self.brush_size, self._paint_value(), self.brush_shape,
                                  protect=self._protect())

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
            self.doc.continue_stroke(x, y)
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
        if ev.button() == Qt.MouseButton.LeftButton and self._shape and self.tool in ("line", "lasso", "select"):
            x, y = self.widget_to_image(ev.position())
            if self.tool == "lasso":
                self.finish_shape()
            elif self.tool == "line":
                from ..tools.shapes import line_mask

                p0, self._shape = self._shape[0], []
                w, h = self.doc.size
                res = line_mask(p0, (x, y), self.brush_size, w, h, self.brush_shape)
                if res is not None:
                    self.doc.fill_shape(res[0], res[1], self.current_class, "Line", self._protect())
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
            self.doc.end_stroke("Erase" if self.tool == "eraser" else "Brush stroke")

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

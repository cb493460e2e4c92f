"""Layers panel, instance tools, sketch brush, tablet pressure, favourites, label-set conversion and
label-file formats, driven through the editor as a user would (offscreen)."""
import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QPointingDevice, QTabletEvent
from PySide6.QtCore import QEvent

from app.main_window import MainWindow
from app.settings import Settings
from engine.paths import demo_dir

CAR, ROAD, SKY = 8, 3, 0




def _pos(c, x, y) -> QPoint:
    return QPoint(int(x * c.scale + c.offset.x()), int(y * c.scale + c.offset.y()))


def _stroke(qtbot, c, pts):
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=_pos(c, *pts[0]))
    for p in pts[1:]:
        qtbot.mouseMove(c, _pos(c, *p))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=_pos(c, *pts[-1]))


def _screen_rgb(c, x, y):
    img = c.grab().toImage()
    p = _pos(c, x, y)
    col = img.pixelColor(p.x(), p.y())
    return col.red(), col.green(), col.blue()


def test_instances_new_paint_merge_split_and_undo(win, qtbot):
    c, doc, a = win.canvas, win.doc, win.actions_
    c.current_class = CAR
    c.set_brush_size(16)
    c.setFocus()
    qtbot.keyClick(c, Qt.Key.Key_N)                            # New Instance from its shortcut
    assert doc.instances is not None and c.current_instance == 1
    _stroke(qtbot, c, [(60, 300), (120, 300)])
    qtbot.keyClick(c, Qt.Key.Key_N)
    assert c.current_instance == 2
    _stroke(qtbot, c, [(200, 300), (260, 300)])
    assert doc.instances[300, 90] == 1 and doc.instances[300, 230] == 2
    assert np.all(doc.labels[doc.instances > 0] == CAR)
    assert doc.undo_stack.count() == 2 and len(doc.undo_stack.command(1).patches) == 2   # labels + instances
    # painting a stuff class over a car clears its instance
    c.current_class = ROAD
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_pos(c, 60, 300))
    assert doc.instances[300, 60] == 0 and doc.instances[300, 100] == 1
    # outlines are drawn where the instance ends
    ov = c.overlays["instances"]
    assert tuple(ov.rgba[300, 230]) != (255, 255, 255, 255) and (ov.rgba[..., 3] == 255).sum() > 100
    # merge: click the one to keep, then the other
    a["tool_merge"].trigger()
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_pos(c, 100, 300))
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_pos(c, 230, 300))
    assert set(np.unique(doc.instances)) == {0, 1}
    # split: drag a line across the (merged, two-piece) instance; its parts become two instances
    a["tool_split"].trigger()
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_pos(c, 100, 300))
    assert len(set(np.unique(doc.instances)) - {0}) == 2
    before = doc.instances.copy()
    k = int(doc.instances[300, 230])
    _stroke(qtbot, c, [(230, 280), (230, 320)])                # cut the right car in two
    assert len(set(np.unique(doc.instances)) - {0}) == 3
    assert doc.instances[300, 210] != doc.instances[300, 250] and k in (doc.instances[300, 210],
                                                                        doc.instances[300, 250])
    a["undo"].trigger()
    assert np.array_equal(doc.instances, before)
    # the eyedropper picks the instance too
    a["tool_picker"].trigger()
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_pos(c, 100, 300))
    assert c.current_instance == doc.instances[300, 100] and c.current_class == CAR


def test_sketch_brush_paints_the_edge_layer_only(win, qtbot):
    c, doc, a = win.canvas, win.doc, win.actions_
    labels = doc.labels.copy()
    c.setFocus()
    qtbot.keyClick(c, Qt.Key.Key_K)
    assert c.active_layer == "edges" and c.tool == "brush" and a["tool_sketch"].isChecked()
    c.set_brush_size(3)
    _stroke(qtbot, c, [(50, 100), (250, 100)])
    assert doc.edges is not None and (doc.edges[95:106, 50:251] == 255).sum() > 400
    assert np.array_equal(doc.labels, labels)
    assert _screen_rgb(c, 150, 100) == (255, 255, 255)        # edges drawn over the labels
    doc.move_layer("edges", -3)                                # below the opaque labels now
    assert doc.layer_order.index("edges") < doc.layer_order.index("labels")
    assert _screen_rgb(c, 150, 100) == tuple(doc.labelset.classes[int(doc.labels[100, 150])].color)
    a["tool_eraser"].trigger()
    _stroke(qtbot, c, [(40, 100), (260, 100)])
    assert doc.edges.max() == 0 and np.array_equal(doc.labels, labels)
    a["layer_labels"].trigger()
    assert c.active_layer == "labels" and win.layers_panel.active == "labels"


def test_layers_panel_visibility_opacity_lock(win, qtbot):
    c, doc, panel = win.canvas, win.doc, win.layers_panel
    names = [panel.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.list.count())]
    assert names == list(reversed(doc.layer_order))            # top layer first
    panel.select("labels")
    panel.opacity.setValue(40)
    assert doc.layer_props["labels"].opacity == pytest.approx(0.4) and win.opacity_slider.value() == 40
    item = panel.list.item(names.index("labels"))
    item.setCheckState(Qt.CheckState.Unchecked)
    assert not doc.layer_props["labels"].visible
    assert _screen_rgb(c, 300, 5) == (20, 20, 20)              # no photo, labels hidden: background
    item = panel.list.item(names.index("labels"))
    item.setCheckState(Qt.CheckState.Checked)
    panel.select("labels")
    panel.lock.setChecked(True)
    before = doc.labels.copy()
    messages = []
    c.message.connect(messages.append)
    c.current_class = CAR
    _stroke(qtbot, c, [(100, 100), (150, 100)])
    c.set_tool("fill")
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_pos(c, 300, 5))
    assert np.array_equal(doc.labels, before) and doc.undo_stack.count() == 0
    assert messages and "locked" in messages[0]
    panel.up.click()                                           # order: labels moves up one
    assert doc.layer_order.index("labels") == 3


def test_tablet_pressure_changes_size_only(win, qtbot):
    c, doc = win.canvas, win.doc
    c.current_class = CAR
    c.set_brush_size(40)
    dev = QPointingDevice.primaryPointingDevice()

    def tablet(kind, x, y, pressure):
        p = QPointF(_pos(c, x, y))
        ev = QTabletEvent(kind, dev, p, c.mapToGlobal(p), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                          Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
        c.tabletEvent(ev)
        assert not ev.isAccepted()                             # Qt goes on to deliver the mouse events

    def pen_dab(x, y, pressure) -> int:
        """A pen touch at (x, y): the tablet event, then the mouse events Qt makes of it; pixels changed."""
        before = doc.labels.copy()
        tablet(QEvent.Type.TabletPress, x, y, pressure)
        qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=_pos(c, x, y))
        qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=_pos(c, x, y))
        tablet(QEvent.Type.TabletRelease, x, y, 0.0)
        return int((doc.labels != before).sum())
    light, full = pen_dab(100, 200, 0.25), pen_dab(300, 200, 1.0)
    # a quarter of the diameter: about a sixteenth of the area; the class is the same either way
    assert 0 < light < full / 8
    assert light > 40 and full > 900
    assert c.pressure is None                                  # the mouse paints at full size again


def test_favourites_keys_and_persistence(win, qtbot, tmp_path):
    pal, c, a = win.palette_panel, win.canvas, win.actions_
    c.current_class = SKY
    a["favourite"].trigger()
    c.current_class = CAR
    a["favourite"].trigger()
    assert pal.favourites == [SKY, CAR]
    assert pal.list.item(0).text().startswith("★") and "[2]" in pal.list.item(1).text()
    c.setFocus()
    qtbot.keyClick(c, Qt.Key.Key_2)
    assert c.current_class == CAR and pal.current_index() == CAR
    qtbot.keyClick(c, Qt.Key.Key_1)
    assert c.current_class == SKY
    assert Settings(tmp_path / "settings.json").get("favourites") == {"camvid_11": [SKY, CAR]}
    pal.filter.setText("car")
    shown = [pal.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(pal.list.count())
             if not pal.list.item(i).isHidden()]
    assert shown == [CAR]
    pal.toggle_favourite(SKY)
    assert pal.favourites == [CAR]


def test_preserve_picked_class(win, qtbot):
    c, doc, a = win.canvas, win.doc, win.actions_
    c.current_class = ROAD
    a["preserve_class"].setChecked(True)                      # paint only over road (and void)
    c.current_class = SKY
    c.set_brush_size(60)
    before = doc.labels.copy()
    _stroke(qtbot, c, [(100, 250), (400, 250)])
    changed = doc.labels != before
    assert changed.sum() > 1000 and np.all(np.isin(before[changed], [ROAD, 11]))   # road (or void) only
    other = ~np.isin(before[220:281, 70:431], [ROAD, 11])            # other classes under the brush...
    assert other.sum() > 1000 and np.array_equal(doc.labels[220:281, 70:431][other],
                                                 before[220:281, 70:431][other])   # ...kept
    a["preserve_void"].setChecked(True)
    assert not a["preserve_class"].isChecked() and c.preserve == "void"


def test_convert_label_set_dialog_and_undo(win, qtbot):
    doc = win.doc
    before = doc.labels.copy()
    counts = np.bincount(before.reshape(-1), minlength=12)

    def adjust(dlg):
        assert dlg.target.name == "cityscapes_35"
        m = dlg.mapping()
        cs = dlg.target
        assert cs.classes[m[ROAD]].name == "road" and cs.classes[m[5]].name == "vegetation"
        dlg.set_target_class(CAR, cs.index_of("truck"))     # the user changes one row
        dlg.set_target_class(7, None)                        # and drops fences to void
        assert dlg.lost_pixels() == counts[7]
    assert win.convert_labelset("cityscapes_35", accept_with=adjust)
    cs = doc.labelset
    assert cs.name == "cityscapes_35" and win.palette_panel.labelset is cs
    assert np.array_equal(doc.labels == cs.index_of("truck"), before == CAR)
    assert np.array_equal(doc.labels == cs.index_of("road"), before == ROAD)
    assert np.all(doc.labels[before == 7] == cs.index_of("unlabeled"))
    win.actions_["undo"].trigger()
    assert doc.labelset.name == "camvid_11" and np.array_equal(doc.labels, before)
    assert win.palette_panel.labelset.name == "camvid_11"
    win.actions_["redo"].trigger()
    assert doc.labelset.name == "cityscapes_35"


def test_import_labelme_and_cityscapes_and_export_formats(win, qtbot, tmp_path, shared):
    doc = win.doc
    lm = {"imageWidth": 64, "imageHeight": 48, "shapes": [
        {"label": "car", "points": [[5, 5], [20, 20]], "shape_type": "rectangle"},
        {"label": "car", "points": [[30, 5], [50, 20]], "shape_type": "rectangle"},
        {"label": "dragon", "points": [[0, 30], [10, 30], [10, 40]], "shape_type": "polygon"}]}
    f = tmp_path / "scene.json"
    f.write_text(json.dumps(lm))
    assert win.open_labels(f)
    assert doc.labels.shape == (48, 64) and doc.labels[10, 10] == CAR and doc.path is None
    assert doc.instances is not None and doc.instances[10, 10] != doc.instances[10, 40]
    assert "dragon" in win.last_info
    # a Cityscapes instanceIds file switches to the Cityscapes label set, with a note
    cs_file = next((shared / "datasets/pix2pixHD_samples/cityscapes/test_inst").glob("*instanceIds.png"))
    assert win.open_labels(cs_file, "cityscapes_instance")
    assert doc.labelset.name == "cityscapes_35" and doc.instances.max() > 5
    assert "read as" in win.last_info and win.palette_panel.labelset.name == "cityscapes_35"
    for fmt in ("raw", "colour", "cityscapes_instance", "instances"):
        assert win.save_labels(tmp_path / f"{fmt}.png", fmt=fmt)
    raw = np.array(__import__("PIL.Image", fromlist=["Image"]).open(cs_file)).astype(np.int64)
    back = np.array(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "cityscapes_instance.png"))
    assert np.array_equal(back.astype(np.int64) // 1000 * (back >= 1000) + back * (back < 1000),
                          raw // 1000 * (raw >= 1000) + raw * (raw < 1000))
    assert not win.save_labels(tmp_path / "e.png", fmt="edges")          # empty edge layer: a clear error
    assert "edge layer is empty" in win.last_error


def test_project_keeps_instances_edges_and_layers(win, qtbot, tmp_path):
    c, doc = win.canvas, win.doc
    c.current_class = CAR
    win.new_instance()
    _stroke(qtbot, c, [(60, 300), (120, 300)])
    win.sketch_brush()
    _stroke(qtbot, c, [(50, 100), (250, 100)])
    doc.set_layer_prop("labels", opacity=0.3, locked=True)
    doc.move_layer("edges", -2)
    inst, edges, order = doc.instances.copy(), doc.edges.copy(), list(doc.layer_order)
    assert win.save_project(tmp_path / "p.semstudio")
    win.open_labels(demo_dir() / "scene_labels.png")
    assert doc.instances is None and doc.edges is None
    assert win.open_file(tmp_path / "p.semstudio")
    assert np.array_equal(doc.instances, inst) and np.array_equal(doc.edges, edges)
    assert doc.layer_order == order and doc.layer_props["labels"].locked
    assert doc.layer_props["labels"].opacity == pytest.approx(0.3) and win.opacity_slider.value() == 30

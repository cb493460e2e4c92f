"""The editor driven as a user would, offscreen (pytest-qt)."""
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from engine.paths import demo_dir




def _widget_pos(canvas, x, y) -> QPoint:
    return QPoint(int(x * canvas.scale + canvas.offset.x()), int(y * canvas.scale + canvas.offset.y()))


def test_opens_demo_scene(win):
    assert win.doc.labels.shape == (360, 480)
    assert len(np.unique(win.doc.labels)) >= 8
    assert win.doc.path.name == "scene_labels.png"


def test_stroke_paints_and_undo_restores(win, qtbot):
    c, doc = win.canvas, win.doc
    before = doc.labels.copy()
    win.palette_panel.select(8)
    c.current_class = 8                                   # car
    c.set_brush_size(20)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 100, 300))
    for x in range(100, 301, 20):
        qtbot.mouseMove(c, _widget_pos(c, x, 300))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 300, 300))
    changed = doc.labels != before
    assert changed.sum() > 3000
    assert np.all(doc.labels[changed] == 8)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 85 and xs.max() <= 315 and ys.min() >= 285 and ys.max() <= 315
    assert doc.undo_stack.count() == 1                     # one command per stroke
    cmd = doc.undo_stack.command(0)
    assert cmd.before.shape[0] <= 40 and cmd.before.size < doc.labels.size / 10   # patch, not the image
    assert doc.modified
    win.actions_["undo"].trigger()
    assert np.array_equal(doc.labels, before)
    win.actions_["redo"].trigger()
    assert np.all(doc.labels[changed] == 8)


def test_eraser_fill_and_eyedropper(win, qtbot):
    c, doc = win.canvas, win.doc
    c.set_tool("eraser")
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 240, 330))
    assert doc.labels[330, 240] == doc.labelset.erase_index
    # eyedropper with Alt held picks the class under the cursor
    c.set_tool("brush")
    sky = int(doc.labels[5, 300])
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.AltModifier, _widget_pos(c, 300, 5))
    assert c.current_class == sky and win.palette_panel.current_index() == sky
    # contiguous fill of the sky with "tree"
    c.current_class = 5
    c.set_tool("fill")
    n_sky = int((doc.labels == sky).sum())
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 300, 5))
    assert doc.labels[5, 300] == 5 and (doc.labels == sky).sum() < n_sky
    win.actions_["undo"].trigger()
    assert (doc.labels == sky).sum() == n_sky
    # global fill replaces every pixel of the class
    win.actions_["fill_global"].setChecked(True)
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 300, 5))
    assert (doc.labels == sky).sum() == 0


def test_brush_size_keys_and_cursor_outline(win, qtbot):
    c = win.canvas
    c.set_brush_size(20)
    c.setFocus()
    qtbot.keyClick(c, Qt.Key.Key_BracketRight)
    assert c.brush_size > 20
    qtbot.keyClick(c, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(c, Qt.Key.Key_BracketLeft)
    assert c.brush_size < 20
    assert win.size_spin.value() == c.brush_size
    qtbot.mouseMove(c, _widget_pos(c, 200, 200))
    img = c.grab().toImage()
    assert not img.isNull()


def test_generate_emits_result_and_shows_it(win, qtbot):
    with qtbot.waitSignal(win.generated, timeout=120_000) as sig:
        win.actions_["generate"].trigger()
    res = sig.args[0]
    w, h = res.size
    assert res.image.shape == (h, w, 3) and res.image.std() > 5
    assert win.doc.result is res.image
    assert win.result_view.pixmap() is not None and not win.result_view.pixmap().isNull()
    win.actions_["show_result"].setChecked(True)
    assert win.canvas.show_result and win.canvas._images.get("result") is not None


def test_live_preview_regenerates_after_an_edit(win, qtbot):
    win.live.delay_ms = 50
    with qtbot.waitSignal(win.generated, timeout=120_000):
        win.actions_["live"].setChecked(True)
    c = win.canvas
    c.current_class = 0
    with qtbot.waitSignal(win.generated, timeout=120_000):
        qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 50, 300))
    first = win.live._last_hash
    assert first.startswith(win.doc.labels_hash())          # labels + the style controls' key


def test_bad_file_shows_error_and_keeps_document(win, qtbot, tmp_path):
    c, doc = win.canvas, win.doc
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 200, 200))
    edited = doc.labels.copy()
    n_undo = doc.undo_stack.count()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"garbage")
    assert not win.open_labels(bad)
    assert "broken.png" in win.last_error
    assert np.array_equal(doc.labels, edited) and doc.undo_stack.count() == n_undo


def test_save_and_reopen_labels(win, qtbot, tmp_path):
    c, doc = win.canvas, win.doc
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 100, 100))
    p = tmp_path / "out.png"
    assert win.save_labels(p)
    assert not doc.modified
    saved = doc.labels.copy()
    assert win.open_labels(p)
    assert np.array_equal(doc.labels, saved)


def test_cancel_and_settings(win, qtbot, tmp_path):
    import time

    from app.settings import Settings

    block = win.client.submit(__import__("engine.api", fromlist=["CallableRequest"]).CallableRequest(
        fn=lambda ctx: [ctx.progress(i / 500, "busy") or time.sleep(0.01) for i in range(500)]))
    qtbot.waitUntil(lambda: win.actions_["cancel_jobs"].isEnabled(), timeout=5000)
    with qtbot.waitSignal(win.client.event, timeout=10_000,
                          check_params_cb=lambda ev: ev.job_id == block and ev.kind == "cancelled"):
        win.actions_["cancel_jobs"].trigger()
    qtbot.waitUntil(lambda: not win.actions_["cancel_jobs"].isEnabled(), timeout=5000)
    win.canvas.set_brush_size(37)
    assert Settings(tmp_path / "settings.json").get("brush_size") == 37


def test_live_scheduler_skips_unchanged_canvas(win, qtbot):
    win.live._timer.setInterval(30)
    with qtbot.waitSignal(win.generated, timeout=120_000):
        win.actions_["live"].setChecked(True)
    submitted = []
    win.client.event.connect(lambda ev: submitted.append(ev) if ev.kind == "queued" else None)
    win.live.poke()                                   # nothing changed: no new job
    qtbot.wait(300)
    assert submitted == []
    win.doc.begin_stroke(10, 10, 5, 2)
    win.doc.end_stroke()
    qtbot.waitUntil(lambda: len(submitted) == 1, timeout=5000)


def test_photo_under_labels(win, qtbot, camvid):
    assert win.open_photo(camvid / "val" / "0016E5_08039.png")
    assert win.doc.photo.shape == (360, 480, 3)
    assert win.canvas._images.get("photo") is not None and win.opacity_slider.value() == 50
    assert not win.open_photo(camvid / "README.md")
    assert win.doc.photo is not None                   # a failed open keeps the photo


def test_failing_model_errors_once_and_stops_live(qtbot, tmp_path):
    w = MainWindow(labels_path=demo_dir() / "scene_labels.png", model=str(tmp_path / "missing_model"),
                   interactive_errors=False)
    qtbot.addWidget(w)
    try:
        w.live._timer.setInterval(20)
        w.actions_["live"].setChecked(True)
        qtbot.waitUntil(lambda: not w.actions_["live"].isChecked(), timeout=20_000)
        assert "missing_model" in w.last_error
        w.last_error = None
        w.doc.begin_stroke(5, 5, 3, 1)
        w.doc.end_stroke()
        qtbot.wait(200)
        assert w.last_error is None                      # live is off: no new failures
        w.actions_["generate"].trigger()
        qtbot.waitUntil(lambda: w.last_error is not None, timeout=20_000)
        assert "missing_model" in w.last_error
    finally:
        w.client.shutdown()


def test_shape_tools_fill_and_undo_in_one_step(win, qtbot):
    c, doc = win.canvas, win.doc
    c.current_class = 8
    before = doc.labels.copy()
    n0 = doc.undo_stack.count()
    # polygon: three clicks, Enter fills
    win.actions_["tool_polygon"].trigger()
    for x, y in ((50, 50), (150, 50), (150, 120)):
        qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, x, y))
    qtbot.keyClick(c, Qt.Key.Key_Return)
    tri = doc.labels != before
    assert tri.sum() > 2500 and np.all(doc.labels[tri] == 8) and doc.undo_stack.count() == n0 + 1
    ys, xs = np.nonzero(tri)
    assert xs.min() >= 49 and xs.max() <= 151 and ys.min() >= 49 and ys.max() <= 121
    # lasso: drag round a region, release fills
    win.actions_["tool_lasso"].trigger()
    c.current_class = 5
    pts = [(300, 200), (380, 200), (380, 280), (300, 280), (300, 205)]
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, *pts[0]))
    for p in pts[1:]:
        from PySide6.QtGui import QMouseEvent
        from PySide6.QtCore import QEvent, QPointF
        from PySide6.QtWidgets import QApplication
        ev = QMouseEvent(QEvent.Type.MouseMove, QPointF(_widget_pos(c, *p)), QPointF(_widget_pos(c, *p)),
                         Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(c, ev)
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, *pts[-1]))
    assert (doc.labels[210:270, 310:370] == 5).all() and doc.undo_stack.count() == n0 + 2
    # line of the brush width
    win.actions_["tool_line"].trigger()
    c.current_class = 3
    c.set_brush_size(6)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 20, 340))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 460, 340))
    assert doc.undo_stack.count() == n0 + 3
    win.actions_["undo"].trigger()
    win.actions_["undo"].trigger()
    win.actions_["undo"].trigger()
    assert np.array_equal(doc.labels, before)
    # Esc cancels a polygon in progress
    win.actions_["tool_polygon"].trigger()
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 10, 10))
    qtbot.keyClick(c, Qt.Key.Key_Escape)
    assert c._shape == [] and doc.undo_stack.index() == n0


def test_preserve_void_paints_only_void(win, qtbot):
    c, doc = win.canvas, win.doc
    void = doc.labelset.erase_index
    assert (doc.labels == void).any()
    before = doc.labels.copy()
    win.actions_["preserve_void"].setChecked(True)
    win.actions_["tool_polygon"].trigger()
    c.current_class = 8
    for x, y in ((0, 0), (479, 0), (479, 359), (0, 359)):
        qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, x, y))
    qtbot.keyClick(c, Qt.Key.Key_Return)
    changed = doc.labels != before
    assert changed.any() and np.all(before[changed] == void)
    assert np.array_equal(doc.labels[before != void], before[before != void])


def test_smart_select_on_a_photo(win, qtbot, camvid):
    from PIL import Image

    c, doc = win.canvas, win.doc
    assert win.new_from_photo(camvid / "val" / "0016E5_08079.png")
    win.actions_["tool_select"].trigger()
    c.current_class = 8
    win.canvas.fit()
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 60, 170))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, 130, 260))
    qtbot.waitUntil(lambda: doc.undo_stack.count() == 1, timeout=30_000)
    sel = doc.labels == 8
    ys, xs = np.nonzero(sel)
    assert 200 < sel.sum() < 70 * 90 and xs.min() >= 60 - 12 and xs.max() <= 130 + 12


def test_undo_history_stays_within_its_byte_budget(qtbot):
    """1,000 strokes on a 4096x2048 canvas with a 1 MB budget: old patches are compressed, then the
    oldest steps dropped; the newest steps still undo exactly."""
    from app.model.document import Document

    doc = Document(size=(4096, 2048))
    doc.undo_budget = 1 << 20
    rng = np.random.default_rng(0)
    trimmed = []
    doc.history_trimmed.connect(trimmed.append)
    snapshots = {}
    for i in range(1000):
        x, y = rng.uniform(100, 3996), rng.uniform(100, 1948)
        doc.begin_stroke(x, y, 64, i % 11)
        for k in range(8):
            doc.continue_stroke(x + 20 * k, y + 9 * k)
        doc.end_stroke()
        assert doc.history_bytes() <= doc.undo_budget
        if i >= 990:
            snapshots[i] = doc.labels.copy()
    assert trimmed and doc.undo_stack.count() < 1000 and doc.undo_stack.count() >= 20
    assert any(c.packed for c in doc._cmds) and not doc._cmds[-1].packed
    for i in range(999, 990, -1):                 # undo walks back through the last strokes exactly
        assert np.array_equal(doc.labels, snapshots[i])
        doc.undo_stack.undo()
    assert np.array_equal(doc.labels, snapshots[990])
    doc.undo_stack.redo()
    assert np.array_equal(doc.labels, snapshots[991])
    import shiboken6

    doc.undo_stack.clear()
    shiboken6.delete(doc)          # free the Qt side now, not during interpreter shutdown


def test_every_action_icon_exists(qtbot):
    import qtawesome as qta

    from app.actions import ACTIONS

    for spec in ACTIONS:
        if spec.icon:
            assert not qta.icon(spec.icon).isNull(), spec.id

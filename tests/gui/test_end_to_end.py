"""One user session end to end, as the issue asks: paint, generate, stylize, a prompt edit, and a
three-frame video exported — every step through the editor's own widgets and the engine thread."""
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from app.settings import Settings
from engine.paths import demo_dir, user_models_dir




def _done(qtbot, win, kind):
    return qtbot.waitSignal(win.client.event, timeout=300_000,
                            check_params_cb=lambda ev: ev.kind in ("result", "error", "cancelled")
                            and ev.request_kind == kind)


def test_paint_generate_stylize_prompt_video(win, qtbot, tmp_path, simgan_model):
    c, doc = win.canvas, win.doc
    pos = lambda x, y: QPoint(int(x * c.scale + c.offset.x()), int(y * c.scale + c.offset.y()))  # noqa: E731
    # paint: a car across the road
    c.current_class = 8
    c.set_brush_size(30)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=pos(150, 300))
    for x in range(150, 330, 15):
        qtbot.mouseMove(c, pos(x, 300))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=pos(330, 300))
    assert (doc.labels[300, 160:320] == 8).all()
    # generate (Ctrl+Enter)
    with qtbot.waitSignal(win.generated, timeout=300_000) as sig:
        win.actions_["generate"].trigger()
    generated = sig.args[0].image
    # stylize with a bundled style photo, fast smoothing
    sp = win.stylize_panel
    sp.smooth.setCurrentIndex(sp.smooth.findData("fast"))
    with _done(qtbot, win, "StylizeRequest") as sig:
        sp.apply_btn.click()
    assert sig.args[0].kind == "result", sig.args[0].error
    qtbot.waitUntil(lambda: win.doc.result is not generated, timeout=10_000)
    stylized = win.doc.result
    assert stylized.shape == generated.shape and not np.array_equal(stylized, generated)
    # a prompt edit of the stylized result, limited to the car
    shutil.copytree(simgan_model, user_models_dir() / "tiny_simgan")
    pp = win.prompt_panel
    pp.refresh_models()
    pp.prompt.setEditText("the car is yellow")
    pp.limit.setCurrentIndex(pp.limit.findData("class:car"))
    with _done(qtbot, win, "TextEditRequest") as sig:
        pp.apply_btn.click()
    assert sig.args[0].kind == "result", sig.args[0].error
    qtbot.waitUntil(lambda: getattr(win, "edited", None) is not None, timeout=10_000)
    assert "car -> yellow" in pp.understood.text()
    # a three-frame video: New timeline from the canvas, two duplicates, the car moved on frame 3
    tp = win.timeline_panel
    tp.new_btn.click()
    tp.dup_btn.click()
    tp.dup_btn.click()
    assert len(tp.tl) == 3 and tp.current == 2
    doc.fill(200, 300, 3)                                   # the car becomes road again on the last frame
    out = tmp_path / "clip.mp4"
    with _done(qtbot, win, "VideoRequest") as sig:
        tp.render(str(out))
    assert sig.args[0].kind == "result", sig.args[0].error
    assert out.stat().st_size > 1000 and sorted(tp.rendered) == [0, 1, 2]
    assert not np.array_equal(tp.rendered[0], tp.rendered[2])   # the edit of frame 3 reached the video
    qtbot.waitUntil(lambda: len(win.jobs_panel.history) >= 3, timeout=10_000)

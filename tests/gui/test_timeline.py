"""The timeline panel on real consecutive CamVid frames: import, edit a frame, keyframes and hold,
propagation, insert/duplicate/delete, range, render to PNG frames and MP4 with per-frame progress,
scrubbing the rendered frames, cancel, onion skin."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from app.settings import Settings
from engine.api import CallableRequest
from engine.paths import demo_dir




@pytest.fixture
def seq(camvid, tmp_path):
    """Three consecutive CamVid validation frames (15 Hz) with their labels, at 160x120."""
    names = sorted(p.name for p in (camvid / "val").iterdir())[:3]
    lab_dir, rgb_dir = tmp_path / "labels", tmp_path / "frames"
    lab_dir.mkdir()
    rgb_dir.mkdir()
    for n in names:
        Image.open(camvid / "val" / n).convert("RGB").resize((160, 120), Image.BILINEAR).save(rgb_dir / n)
        Image.open(camvid / "valannot" / n).resize((160, 120), Image.NEAREST).save(lab_dir / n)
    return lab_dir, rgb_dir


def _wait_job(qtbot, win, kind, timeout=300_000):
    return qtbot.waitSignal(win.client.event, timeout=timeout,
                            check_params_cb=lambda ev: ev.kind in ("result", "error", "cancelled")
                            and ev.request_kind == kind)


def test_timeline_edit_propagate_render_scrub(win, qtbot, seq, tmp_path):
    tp, doc = win.timeline_panel, win.doc
    lab_dir, rgb_dir = seq
    assert not tp.render_btn.isEnabled()
    assert tp.import_labels(str(lab_dir), str(rgb_dir))
    assert len(tp.tl) == 3 and sorted(tp.tl.keyframes) == [0, 1, 2]
    assert doc.labels.shape == (120, 160) and doc.photo is not None            # frame 1 with its picture
    truth1 = np.asarray(Image.open(sorted(lab_dir.iterdir())[1]))
    # edit frame 2 on the canvas, move on: the edit is kept as its keyframe
    tp.go_to(1)
    assert np.array_equal(doc.labels, truth1)
    doc.begin_stroke(20, 20, 9, 8)
    doc.end_stroke()
    edited = doc.labels.copy()
    tp.go_to(2)
    assert np.array_equal(tp.tl.labels(1), edited)
    tp.go_to(0)
    tp.onion.setChecked(True)
    assert win.canvas._onion_img is None                                        # no frame before the first
    tp.go_to(1)
    assert win.canvas._onion_img is not None
    # clear frame 2's keyframe and propagate it from its neighbours by flow
    tp.toggle_keyframe()
    assert 1 not in tp.tl.keyframes and tp.tl.frames[1].source == "missing"
    with _wait_job(qtbot, win, "CallableRequest") as sig:
        tp.propagate()
    assert sig.args[0].kind == "result", sig.args[0].error
    assert tp.tl.frames[1].source == "propagated"
    prop = tp.tl.labels(1)
    assert (prop == truth1).mean() > 0.8                                        # flow carries most labels right
    tp.go_to(0)
    tp.hold.setChecked(True)
    assert tp.tl.keyframes[0] is True
    assert tp.tl.frames[1].source == "missing"          # a changed keyframe invalidates what it propagated
    # insert, duplicate, delete
    tp.insert_frame()
    assert len(tp.tl) == 4 and tp.current == 1 and tp.tl.frames[1].source == "missing"
    tp.delete_frame()
    tp.go_to(2)
    tp.duplicate_frame()
    assert len(tp.tl) == 4 and np.array_equal(tp.tl.labels(3), tp.tl.labels(2))
    tp.delete_frame()
    assert len(tp.tl) == 3
    # render frames 2..3 to PNG frames: per-frame progress, then scrub them
    tp.start.setValue(2)
    tp.end.setValue(3)
    assert list(tp.tl.frame_range()) == [1, 2]
    out = tmp_path / "png_out"
    with _wait_job(qtbot, win, "VideoRequest") as sig:
        tp.render(str(out))
    assert sig.args[0].kind == "result", sig.args[0].error
    assert len(list(out.glob("*.png"))) == 2 and sorted(tp.rendered) == [1, 2]
    assert tp.progress.value() == 100 and "rendered 2 frames" in tp.info.text()
    tp.go_to(2)
    assert win.doc.result is tp.rendered[2]                                     # scrubbing shows the render
    img = tp.strip.grab().toImage()
    assert not img.isNull()
    mp4 = tmp_path / "v.mp4"
    with _wait_job(qtbot, win, "VideoRequest") as sig:
        tp.render(str(mp4))
    assert sig.args[0].kind == "result", sig.args[0].error
    assert mp4.stat().st_size > 1000


def test_timeline_render_cancel_and_bad_folder(win, qtbot, seq, tmp_path):
    import threading

    tp = win.timeline_panel
    assert not tp.import_labels(str(tmp_path / "nowhere"))
    assert "not a folder" in tp.last_error
    tp.new_timeline()
    assert len(tp.tl) == 1
    tp.duplicate_frame()
    tp.duplicate_frame()
    gate = threading.Event()
    win.client.submit(CallableRequest(fn=lambda ctx: gate.wait(30), name="busy"))   # holds the worker
    job = tp.render(str(tmp_path / "never"))
    assert tp.cancel_btn.isEnabled()
    with _wait_job(qtbot, win, "VideoRequest") as sig:
        tp.cancel()
        gate.set()
    assert sig.args[0].kind == "cancelled" and job is not None
    assert tp.render_btn.isEnabled() and not tp.cancel_btn.isEnabled() and "cancelled" in tp.info.text()


def test_timeline_is_saved_in_the_project(win, qtbot, seq, tmp_path):
    tp, doc = win.timeline_panel, win.doc
    lab_dir, rgb_dir = seq
    assert tp.import_labels(str(lab_dir), str(rgb_dir))
    tp.go_to(1)
    doc.begin_stroke(30, 30, 9, 8)
    doc.end_stroke()
    edited = doc.labels.copy()
    tp.go_to(2)                                  # frame 2 keeps the edit as its keyframe ...
    tp.toggle_keyframe()                         # ... and frame 3 is cleared: no labels until propagated
    tp.go_to(0)
    tp.hold.setChecked(True)
    tp.fps.setValue(10)
    tp.end.setValue(2)
    tp.go_to(1)
    assert win.save_project(tmp_path / "clip.semstudio")
    assert win.open_labels(demo_dir() / "scene_labels.png") and True
    win.doc.timeline = None
    assert win.open_file(tmp_path / "clip.semstudio")
    tl = tp.tl
    assert tl is not None and len(tl) == 3 and tl.fps == 10 and list(tl.frame_range()) == [0, 1]
    assert tl.keyframes == {0: True, 1: False} and tl.frames[2].source == "missing"
    assert np.array_equal(tl.labels(1), edited) and tp.current == 1 and np.array_equal(doc.labels, edited)
    assert tl.frames[0].rgb_path is not None and tl.rgb(0).shape == (120, 160, 3)

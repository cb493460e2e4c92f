"""Projects in the editor: save/open round trip, a bad file keeps the document, autosave and recovery,
recent files."""
import numpy as np
import pytest

from app.main_window import MainWindow
from app.settings import Settings
from engine.paths import demo_dir




def test_project_round_trip_and_recent(win, tmp_path, camvid):
    win.doc.fill(10, 10, 8)
    win.open_photo(camvid / "val" / "0016E5_07959.png")
    win.doc.set_result(np.full((360, 480, 3), 77, np.uint8))
    win.doc.settings["seed"] = 5
    assert win.doc.modified
    f = tmp_path / "scene"                               # the suffix is added
    assert win.save_project(f)
    f = tmp_path / "scene.semstudio"
    assert f.exists() and not win.doc.modified and win.windowTitle().startswith("scene.semstudio")
    labels, photo = win.doc.labels.copy(), win.doc.photo.copy()
    win.open_labels(demo_dir() / "scene_labels.png")
    assert not np.array_equal(win.doc.labels, labels)
    assert win.open_file(f)
    assert np.array_equal(win.doc.labels, labels) and np.array_equal(win.doc.photo, photo)
    assert win.doc.result[0, 0, 0] == 77 and win.doc.settings["seed"] == 5
    assert win.settings.get("recent")[0].endswith("scene.semstudio")
    assert [a.text() for a in win.recent_menu.actions()][0] == "scene.semstudio"


def test_bad_project_keeps_the_document(win, tmp_path):
    bad = tmp_path / "broken.semstudio"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    before = win.doc.labels.copy()
    win.doc.fill(10, 10, 8)
    edited = win.doc.labels.copy()
    assert not win.open_file(bad)
    assert "not a Semantic Studio project" in win.last_error
    assert np.array_equal(win.doc.labels, edited) and not np.array_equal(before, edited) and win.doc.modified


def test_autosave_then_recovery_after_a_crash(win, qtbot, tmp_path):
    import json

    from app.io.project import autosave_path, recoverable

    assert not win.autosave()                            # nothing modified: nothing written
    win.doc.fill(10, 10, 8)
    assert win.autosave(wait=True)
    f = autosave_path(win.session)
    assert f.exists() and recoverable() == []            # its editor is alive
    # the editor "crashed": its pid is gone
    side = f.with_suffix(".json")
    side.write_text(json.dumps({"original": None, "pid": 2 ** 22 + 12345}))
    crashed_labels = win.doc.labels.copy()
    w2 = MainWindow(labels_path=demo_dir() / "scene_labels.png", interactive_errors=False, settings=win.settings)
    qtbot.addWidget(w2)
    try:
        assert not np.array_equal(w2.doc.labels, crashed_labels)
        assert w2.offer_recovery(accept=True)
        assert np.array_equal(w2.doc.labels, crashed_labels) and w2.doc.modified and w2.doc.path is None
        assert recoverable() == [] and not f.exists()
    finally:
        w2.client.shutdown()


def test_normal_close_removes_the_autosave(win, qtbot):
    from app.io.project import autosave_path

    win.doc.fill(10, 10, 8)
    win.autosave(wait=True)
    assert autosave_path(win.session).exists()
    win.close()
    assert not autosave_path(win.session).exists()


def test_photo_auto_label_swap_and_region_regeneration(win, qtbot, camvid):
    """A real photo: New from Photo, Auto-label, swap trees for buildings, Regenerate Changed Region;
    the untouched pixels are identical to the input photo; Tab shows before/after; undo restores."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    src = camvid / "val" / "0016E5_08079.png"
    assert win.new_from_photo(src)
    photo = win.doc.photo.copy()
    assert win.doc.labels.shape == photo.shape[:2] and (win.doc.labels == win.doc.labelset.erase_index).all()
    assert win.regenerate_region() is None and "open" not in (win.last_error or "x")   # nothing changed yet
    job = win.auto_label()
    qtbot.waitUntil(lambda: job not in win._photo_jobs, timeout=60_000)
    ls = win.doc.labelset
    tree, building = ls.index_of("tree"), ls.index_of("building")
    assert (win.doc.labels == tree).mean() > 0.03 and np.array_equal(win.doc.base_labels, win.doc.labels)
    labelled = win.doc.labels.copy()
    win.doc.replace_labels(np.where(labelled == tree, building, labelled), "Trees to buildings")
    job = win.regenerate_region()
    qtbot.waitUntil(lambda: job not in win._photo_jobs, timeout=60_000)
    out = win.doc.result
    changed = labelled == tree
    assert out.shape == photo.shape and np.abs(out[changed].astype(int) - photo[changed]).mean() > 10
    import cv2
    far = cv2.dilate(changed.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert np.array_equal(out[far], photo[far])
    assert win.canvas.show_result
    QApplication.sendEvent(win.canvas, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Tab, Qt.KeyboardModifier.NoModifier))
    assert not win.canvas.show_result
    QApplication.sendEvent(win.canvas, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Tab, Qt.KeyboardModifier.NoModifier))
    assert win.canvas.show_result
    win.actions_["undo"].trigger()                          # the swap
    assert np.array_equal(win.doc.labels, labelled)
    win.actions_["undo"].trigger()                          # the auto-label
    assert (win.doc.labels == ls.erase_index).all()


def test_preferences_apply_and_persist(win, tmp_path, monkeypatch):
    from PySide6.QtGui import QKeySequence

    monkeypatch.setenv("SEMSTUDIO_MODELS_DIR", "")        # restored (unset) after the test

    from engine.paths import user_models_dir

    def fill(dlg):
        dlg.undo_mb.setValue(64)
        dlg.autosave.setValue(0)
        dlg.models.setText(str(tmp_path / "my_models"))
        row = dlg._ids.index("generate")
        dlg.table.item(row, 1).setText("Ctrl+G")
    win.preferences(accept_with=fill)
    assert win.doc.undo_budget == 64 << 20 and not win.autosave_timer.isActive()
    assert user_models_dir() == tmp_path / "my_models"
    assert win.actions_["generate"].shortcut() == QKeySequence("Ctrl+G")
    assert win.settings.get("shortcuts") == {"generate": "Ctrl+G"}
    again = Settings(win.settings.path)                   # persisted as JSON
    assert again.get("undo_budget_mb") == 64 and again.get("autosave_seconds") == 0
    # a clash is refused with a message and nothing is saved
    def clash(dlg):
        row = dlg._ids.index("undo")
        dlg.table.item(row, 1).setText("Ctrl+G")
    dlg = win.preferences(accept_with=clash)
    assert "Ctrl+G" in dlg.problem.text() and win.settings.get("shortcuts") == {"generate": "Ctrl+G"}

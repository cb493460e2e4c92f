"""The Models dialog: catalogue with states and cards, import through the engine thread, unload all,
and choosing a model of another label set (offers the conversion)."""
import json
import shutil

import numpy as np
import pytest
import torch

from app.main_window import MainWindow
from app.settings import Settings
from engine.paths import demo_dir, user_models_dir
from engine.registry import demo_model_dir




def _open(win, qtbot):
    with qtbot.waitSignal(win.client.event, timeout=60_000, check_params_cb=lambda ev: ev.kind == "result"):
        dlg = win.model_manager()
    qtbot.waitUntil(lambda: bool(dlg.entries), timeout=60_000)
    return dlg


def test_catalogue_details_and_use(win, qtbot, tmp_path):
    assert user_models_dir() == tmp_path / "data" / "models"            # never the user's real folder
    dlg = _open(win, qtbot)
    names = {e["name"]: e for e in dlg.entries}
    assert {"camvid_spade_demo", "camvid_segmenter", "photowct_vgg19"} <= set(names)
    assert all(e["state"] == "ok" for e in dlg.entries if e["where"] == "bundled")
    assert dlg.select("camvid_segmenter")
    assert not dlg.use_btn.isEnabled()                       # a segmenter does not generate
    assert dlg.select("camvid_spade_demo")
    html = dlg.details.toHtml()
    assert "camvid_11" in html and "non-commercial" in html and "miou ratio" in html.lower()
    assert dlg.use_btn.isEnabled()
    dlg.use_btn.click()
    assert win.model == names["camvid_spade_demo"]["path"] and win.live.model == win.model
    assert win.settings.get("model") == win.model


def test_import_then_broken_file_shows_mismatch(win, qtbot, tmp_path):
    from safetensors.torch import load_file

    dlg = _open(win, qtbot)
    pth = tmp_path / "street.pth"
    torch.save(load_file(str(demo_model_dir() / "generator.safetensors")), pth)
    with qtbot.waitSignal(dlg.imported, timeout=120_000):
        dlg.import_file(str(pth), confirm=True)
    dest = user_models_dir() / "street"
    assert (dest / "card.json").exists()
    qtbot.waitUntil(lambda: any(e["name"] == "street" for e in dlg.entries), timeout=60_000)
    data = bytearray((dest / "generator.pth").read_bytes())
    data[200] ^= 1
    (dest / "generator.pth").write_bytes(bytes(data))
    with qtbot.waitSignal(dlg.refreshed, timeout=60_000) as sig:
        dlg.refresh()
    e = {x["name"]: x for x in sig.args[0]}["street"]
    assert e["state"] == "mismatch" and e["where"] == "user"
    dlg.select("street")
    assert not dlg.use_btn.isEnabled() and "mismatch" in dlg.details.toPlainText()
    # a file that is not a checkpoint: a clear error, nothing copied
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    n = len(list(user_models_dir().iterdir()))
    dlg.import_file(str(junk), confirm=True)
    qtbot.waitUntil(lambda: dlg.last_error is not None, timeout=60_000)
    assert "junk.pth" in dlg.last_error and len(list(user_models_dir().iterdir())) == n


def test_unload_all_releases_models(win, qtbot):
    with qtbot.waitSignal(win.generated, timeout=120_000):
        win.generate()
    assert win.client.worker._manager.resident()
    dlg = _open(win, qtbot)
    with qtbot.waitSignal(dlg.unloaded, timeout=60_000) as sig:
        dlg.unload_all()
    assert "camvid_spade_demo" in sig.args[0] and win.client.worker._manager.resident() == []
    assert dlg.open_folder() == user_models_dir() and user_models_dir().is_dir()


def test_model_of_another_label_set_offers_conversion(win, qtbot, tmp_path):
    other = tmp_path / "elsewhere" / "city_like"
    shutil.copytree(demo_model_dir(), other)
    card = json.loads((other / "card.json").read_text())
    card["labelset"] = "cityscapes_35"
    (other / "card.json").write_text(json.dumps(card))
    before = win.doc.labels.copy()
    assert not win.use_model(str(other), card, convert_with=lambda dlg: False)    # declined: nothing changes
    assert win.model is None and np.array_equal(win.doc.labels, before) and win.doc.labelset.name == "camvid_11"
    seen = []
    assert win.use_model(str(other), card, convert_with=lambda dlg: seen.append(dlg.target.name))
    assert seen == ["cityscapes_35"] and win.doc.labelset.name == "cityscapes_35" and win.model == str(other)

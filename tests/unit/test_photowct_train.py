"""PhotoWCT decoder training: d1's least-squares fit, a few SGD steps, stop and resume, export."""
import numpy as np
import pytest
import torch
from PIL import Image

from engine.models.photowct import load_photowct
from engine.train.photowct import DecoderTrainer, PhotoWCTTrainConfig, export_photowct


@pytest.fixture()
def photos(tmp_path, shared):
    d = tmp_path / "photos"
    d.mkdir()
    src = sorted((shared / "datasets" / "camvid_segnet" / "train").glob("*.png"))[:3]
    for p in src:
        Image.open(p).convert("RGB").resize((96, 72)).save(d / p.name)
    return d


def test_train_resume_export(photos, tmp_path):
    cfg = PhotoWCTTrainConfig(data_roots=[str(photos)], steps={"1": 0, "2": 3, "3": 2, "4": 1}, crop=32, batch=1,
                              save_every=1, log_every=1, d1_batches=4, threads=1)
    run = tmp_path / "run"
    t = DecoderTrainer(cfg, run, log=lambda m: None)
    n = {"i": 0}

    def stop_after_two():
        n["i"] += 1
        return n["i"] > 3
    t.fit(stop_after_two)                         # d1 fitted, d2 interrupted
    assert t.done["1"]["method"] == "least squares"
    assert t.done["1"]["train_psnr"] > 30          # a linear decoder of relu1_1 inverts it closely
    assert t.level == 2 and 0 < t.step < 3
    r = DecoderTrainer.resume(run, log=lambda m: None)
    assert (r.level, r.step) == (t.level, t.step)
    for k, v in t.nets.decoder_state().items():
        assert torch.equal(v, r.nets.decoder_state()[k]), k
    # the batch of a step is the same after resuming
    assert torch.equal(t.batch_for(2, 1), r.batch_for(2, 1))
    r.fit()
    assert set(r.done) == {"1", "2", "3", "4"}
    # extending a finished decoder trains it further and leaves the others alone
    before = {k: v.clone() for k, v in r.nets.decoder_state().items()}
    r.extend(2, 2)
    r.fit()
    assert r.done["2"]["steps"] == 5 and r.level == 5
    after = r.nets.decoder_state()
    assert not torch.equal(before["d2.conv2_1.weight"], after["d2.conv2_1.weight"])
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("d3.", "d4.")))
    with pytest.raises(ValueError, match="closed form"):
        r.extend(1, 5)
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("level,step,loss") and len(log) > 3
    card = export_photowct(run, tmp_path / "model", [str(photos)])
    assert set(card["eval"]["reconstruction_psnr_db"]) == {"d1", "d2", "d3", "d4"}
    assert card["eval"]["reconstruction_psnr_db"]["d1"] > 30
    assert "non-commercial" in card["licence"]["data"]
    nets, c = load_photowct(tmp_path / "model")
    x = torch.from_numpy(np.array(Image.open(next(photos.iterdir())).convert("RGB"))).permute(2, 0, 1)[None]
    x = x.float() / 255
    f, pools = nets.e1(x)
    assert 10 * torch.log10(1 / torch.mean((nets.d1(f, pools).clamp(0, 1) - x) ** 2)) > 30


def test_export_refuses_unfinished_runs(photos, tmp_path):
    cfg = PhotoWCTTrainConfig(data_roots=[str(photos)], steps={"1": 0, "2": 5, "3": 5, "4": 5}, crop=32, batch=1,
                              d1_batches=2, threads=1)
    t = DecoderTrainer(cfg, tmp_path / "run", log=lambda m: None)
    t.save()
    with pytest.raises(RuntimeError, match="not trained yet"):
        export_photowct(tmp_path / "run", tmp_path / "m", [str(photos)])

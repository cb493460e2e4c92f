
import numpy as np
import pytest
import torch
from PIL import Image

from engine.cards import load_card, sha256_file
from engine.labels import get_labelset
from engine.train.datasets import DatasetError, PairedDataset
from engine.train.export import export_run
from engine.train.trainer import SpadeTrainer, TrainConfig

TINY = dict(size=(64, 32), batch=2, ngf=4, nhidden=8, ndf=8, num_D=2, n_layers_D=3, vgg_scale=0.5,
            save_every=1, sample_every=2, log_every=1, threads=2, scale_aug=(1.0, 1.2))


def _cfg(data, **kw):
    return TrainConfig(data=str(data), labelset="camvid_11", **{**TINY, **kw})


def test_one_step_moves_weights_and_losses_are_finite(tiny_camvid, tmp_path):
    tr = SpadeTrainer(_cfg(tiny_camvid, steps=1), tmp_path / "run", log=lambda m: None)
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    seg, real = tr.batch_for(0)
    assert seg.shape == (2, 12, 32, 64) and real.shape == (2, 3, 32, 64)
    assert torch.all(seg.sum(1) == 1)                         # one-hot
    losses = tr.train_step(seg, real)
    assert set(losses) == {"GAN", "GAN_Feat", "VGG", "D"} and all(np.isfinite(list(losses.values())))
    assert losses["VGG"] > 0
    changed = [k for k, v in tr.G.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert "up_3.conv_1.weight_orig" in changed and "fc.weight" in changed


def test_resume_continues_exactly(tiny_camvid, tmp_path):
    a = SpadeTrainer(_cfg(tiny_camvid, steps=3), tmp_path / "a", log=lambda m: None)
    a.fit()
    b = SpadeTrainer(_cfg(tiny_camvid, steps=2), tmp_path / "b", log=lambda m: None)
    b.fit()
    assert (tmp_path / "b" / "checkpoint.pt").exists() and (tmp_path / "b" / "samples" / "step_000002.png").exists()
    b2 = SpadeTrainer.resume(tmp_path / "b", {"steps": 3}, log=lambda m: None)
    assert b2.step == 2
    b2.fit()
    assert b2.step == 3
    for k, v in a.G.state_dict().items():
        assert torch.allclose(v.float(), b2.G.state_dict()[k].float(), atol=1e-6), k
    rows = (tmp_path / "b" / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 4          # header + steps 1, 2, 3
    with pytest.raises(ValueError, match="cannot change"):
        SpadeTrainer.resume(tmp_path / "b", {"ngf": 8})


def test_bad_samples_are_reported_or_stop(tiny_camvid, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_camvid, root)
    first = sorted((root / "trainannot").iterdir())[0]
    lab = np.array(Image.open(first))
    lab[0, 0] = 77
    Image.fromarray(lab).save(first)
    (root / "train" / "broken.png").write_bytes(b"nope")
    (root / "trainannot" / "broken.png").write_bytes(b"nope")
    msgs = []
    ds = PairedDataset(root, get_labelset("camvid_11"), on_bad="skip", log=msgs.append)
    assert len(ds) == 5 and len(ds.skipped) == 2
    assert any(first.name in m and "77" in m for m in msgs) and any("broken.png" in m for m in msgs)
    with pytest.raises(DatasetError, match="broken.png|77"):
        PairedDataset(root, get_labelset("camvid_11"), on_bad="stop")


def test_export_writes_safetensors_and_card(tiny_camvid, tmp_path):
    tr = SpadeTrainer(_cfg(tiny_camvid, steps=1), tmp_path / "run", log=lambda m: None)
    tr.fit()
    export_run(tmp_path / "run", tmp_path / "model", "tiny")
    c = load_card(tmp_path / "model", verify=True)
    assert c["family"] == "spade" and c["labelset"] == "camvid_11" and c["resolution"] == [64, 32]
    f = c["files"]["generator"]
    assert f["sha256"] == sha256_file(tmp_path / "model" / f["path"])
    assert "non-commercial" in c["training"]["data_licence"] and c["training"]["steps"] == 1
    assert c["training"]["cpu_seconds"] > 0 and c["training"]["wall_seconds"] > 0

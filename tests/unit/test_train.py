
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
    seg, real, inst = tr.batch_for(0)
    assert seg.shape == (2, 12, 32, 64) and real.shape == (2, 3, 32, 64)
    assert torch.all(seg.sum(1) == 1)                         # one-hot
    losses = tr.train_step(seg, real, inst)
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
    # a finished run can be extended with a decay phase: steps 2..4 fall linearly to 0 from step 2
    b3 = SpadeTrainer.resume(tmp_path / "b", {"steps": 4, "lr_decay_from": 0.5}, log=lambda m: None)
    assert b3.cfg.lr_decay_from == 0.5
    b3.step = 3
    b3.set_lr()
    assert b3.opt_g.param_groups[0]["lr"] == pytest.approx(b3.base_lrs[0] * 0.5)


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


def test_pseudo_instances_split_separate_things_and_follow_the_augmentation(tiny_camvid):
    from engine.labels.maps import boundary_map, pseudo_instances

    lab = np.zeros((6, 8), int)
    lab[1:3, 1:3] = 8
    lab[1:3, 5:7] = 8          # a second car, not touching the first
    lab[4:6, 0:2] = 9
    inst = pseudo_instances(lab, [8, 9, 10])
    assert set(np.unique(inst)) == {0, 8000, 8001, 9000}
    assert (inst[lab == 0] == 0).all()
    ds = PairedDataset(tiny_camvid, get_labelset("camvid_11"), "train", log=lambda m: None)
    assert all(s.pseudo for s in ds.samples)
    rng = np.random.default_rng(5)
    img, lab, inst = ds.get_with_instances(0, (64, 48), rng, (1.0, 1.5), True)
    assert img.shape == (48, 64, 3) and lab.shape == inst.shape == (48, 64)
    # the instance map went through the same resize/crop/flip as the labels
    assert np.array_equal(np.where(inst >= 1000, inst // 1000, inst), lab)
    assert boundary_map(inst).sum() >= boundary_map(lab).sum()


def test_pix2pixhd_trains_its_encoder_and_exports_a_multimodal_model(tiny_camvid, tmp_path):
    from engine.registry import generate, load_model
    from engine.train.trainer import Pix2PixHDTrainer, make_trainer

    cfg = TrainConfig(family="pix2pixhd", data=str(tiny_camvid), labelset="camvid_11", size=(64, 48), batch=2,
                      steps=2, ngf=8, n_downsample_global=2, n_blocks_global=2, feat_num=3, nef=8, ndf=8,
                      n_layers_D=3, ttur=False, beta1=0.5, vgg_scale=0.5, lr_decay_from=0.5, save_every=1,
                      sample_every=0, log_every=1, threads=2)
    tr = make_trainer(cfg, tmp_path / "run", log=lambda m: None)
    assert isinstance(tr, Pix2PixHDTrainer) and tr.E is not None
    g0 = {k: v.clone() for k, v in tr.G.state_dict().items()}
    e0 = {k: v.clone() for k, v in tr.E.state_dict().items()}
    seg, real, inst = tr.batch_for(0)
    assert seg.shape == (2, 13, 48, 64)                            # 12 one-hot + instance edge
    losses = tr.train_step(seg, real, inst)
    assert set(losses) == {"GAN", "GAN_Feat", "VGG", "D"} and all(np.isfinite(list(losses.values())))
    assert not torch.equal(g0["model.1.weight"], tr.G.state_dict()["model.1.weight"])
    assert not torch.equal(e0["model.1.weight"], tr.E.state_dict()["model.1.weight"])  # trained through G
    for step, factor in ((0, 1.0), (1, 1.0), (2, 0.0)):             # second half: linear decay to 0
        tr.step = step
        tr.set_lr()
        assert tr.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * factor)
        assert tr.opt_d.param_groups[0]["lr"] == pytest.approx(2e-4 * factor)
    tr.step = 1
    tr.fit()
    card = export_run(tmp_path / "run", tmp_path / "p2p", "p2p", clusters=3)
    assert {"generator", "encoder", "clusters"} <= set(card["files"])
    assert card["capabilities"]["per_instance_style"] and card["capabilities"]["multimodal"]
    m = load_model(tmp_path / "p2p")
    assert m.family == "pix2pixhd" and m.encoder is not None and m.clusters
    lab = np.full((48, 64), 3)
    lab[10:30, 5:25] = 8
    lab[10:30, 35:60] = 8
    a, b = generate(m, lab, seed=0), generate(m, lab, seed=1)
    assert a.shape == (48, 64, 3) and not np.array_equal(a, generate(m, np.full((48, 64), 3), seed=0))
    assert np.array_equal(a, generate(m, lab, seed=0))
    assert not np.array_equal(a, b)                                 # seeds pick other feature clusters


def test_dataset_layouts_cityscapes_ade20k_coco(shared, tmp_path):
    """Each official layout pairs photos with label and instance maps (real label files; Cityscapes and
    ADE20K photos are stand-ins because the shared samples ship label maps only)."""
    import cv2

    from engine.train.datasets import LAYOUT_LABELSETS, detect_layout, find_pairs

    coco = shared / "datasets" / "coco_stuff_spade_samples"
    assert detect_layout(coco) == "coco"
    ds = PairedDataset(coco, get_labelset(LAYOUT_LABELSETS["coco"]), "val", log=lambda m: None)
    assert len(ds) == 8 and all(s.instances is not None and not s.pseudo for s in ds.samples)
    assert all(s.labels.max() <= 182 for s in ds.samples)          # 255 (unlabelled) became the void index

    src = shared / "datasets" / "pix2pixHD_samples" / "cityscapes"
    city = tmp_path / "cityscapes"
    for name in sorted(p.name for p in (src / "train_label").iterdir())[:2]:
        stem = name.replace("_gtFine_labelIds.png", "")
        cdir = city / "gtFine" / "train" / stem.split("_")[0]
        idir = city / "leftImg8bit" / "train" / stem.split("_")[0]
        cdir.mkdir(parents=True, exist_ok=True)
        idir.mkdir(parents=True, exist_ok=True)
        lab = cv2.resize(np.array(Image.open(src / "train_label" / name)), (256, 128), interpolation=cv2.INTER_NEAREST)
        inst = cv2.resize(np.array(Image.open(src / "train_inst" / name.replace("labelIds", "instanceIds"))),
                          (256, 128), interpolation=cv2.INTER_NEAREST)
        Image.fromarray(lab).save(cdir / name)
        cv2.imwrite(str(cdir / name.replace("labelIds", "instanceIds")), inst.astype(np.uint16))   # 16-bit PNG
        Image.fromarray(np.zeros((128, 256, 3), np.uint8)).save(idir / f"{stem}_leftImg8bit.png")
    assert detect_layout(city) == "cityscapes"
    pairs = find_pairs(city, "train")
    assert len(pairs) == 2 and all(p[2] is not None and p[2].name.endswith("instanceIds.png") for p in pairs)
    ds = PairedDataset(city, get_labelset("cityscapes_35"), "train", log=lambda m: None)
    s = ds.samples[0]
    assert not s.pseudo and (s.instances >= 1000).any()              # cars etc. as class*1000+k
    assert np.array_equal(np.where(s.instances >= 1000, s.instances // 1000, s.instances), s.labels)

    ade = tmp_path / "ADEChallengeData2016"
    for sub in ("images/training", "annotations/training"):
        (ade / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(ade / "images/training/ADE_train_00000001.jpg")
    lab = np.zeros((32, 48), np.uint8)
    lab[:, 24:] = 3
    Image.fromarray(lab).save(ade / "annotations/training/ADE_train_00000001.png")
    assert detect_layout(ade) == "ade20k"
    ds = PairedDataset(ade, get_labelset("ade20k_150"), "train", log=lambda m: None)
    ls = get_labelset("ade20k_150")
    assert (ds.samples[0].labels[:, :24] == ls.void_index).all() and (ds.samples[0].labels[:, 24:] == 2).all()
    with pytest.raises(DatasetError, match="no known dataset layout"):
        find_pairs(tmp_path / "nothing", "train")


def test_groupdnet_trains_its_group_encoder_and_exports_per_class_codes(tiny_camvid, tmp_path):
    from engine.models.groupdnet import Z_PER_CLASS
    from engine.registry import StyleControls, generate, load_model
    from engine.train.trainer import GroupDNetTrainer, make_trainer

    cfg = TrainConfig(family="groupdnet", data=str(tiny_camvid), labelset="camvid_11", size=(64, 64), batch=2,
                      steps=1, ngf=12, nhidden=24, nef=4, ndf=8, num_D=1, n_layers_D=3, vgg_scale=0.5,
                      save_every=1, sample_every=0, log_every=1, threads=2)
    tr = make_trainer(cfg, tmp_path / "run", log=lambda m: None)
    assert isinstance(tr, GroupDNetTrainer)
    seg, real, inst = tr.batch_for(0)
    tr.E.eval()                                 # no spectral-norm power iteration between the two calls
    mu, logvar = tr.E(real, seg)
    assert mu.shape == (2, 12 * Z_PER_CLASS, 2, 2)                  # one 8-channel code per class
    # each class's code depends only on that class's pixels: the encoder's groups are per class
    real2 = real.clone()
    sky = seg[:, 0:1].bool().expand_as(real2)
    real2[sky] = -real2[sky]
    mu2, _ = tr.E(real2, seg)
    d = (mu2 - mu).abs().reshape(2, 12, Z_PER_CLASS, -1).amax((0, 2, 3))
    assert d[0] > 0 and torch.all(d[1:] == 0)
    tr.E.train()
    e0 = {k: v.clone() for k, v in tr.E.state_dict().items()}
    losses = tr.train_step(seg, real, inst)
    assert set(losses) == {"GAN", "GAN_Feat", "VGG", "KLD", "D"} and all(np.isfinite(list(losses.values())))
    assert not torch.equal(e0["fc_mu.weight"], tr.E.state_dict()["fc_mu.weight"])
    tr.fit()
    card = export_run(tmp_path / "run", tmp_path / "gd", "gd")
    assert card["family"] == "groupdnet" and card["capabilities"]["per_class_style"]
    m = load_model(tmp_path / "gd")
    lab = np.full((64, 64), 3)
    lab[:32] = 0
    a = generate(m, lab, seed=0)
    assert a.shape == (64, 64, 3) and np.array_equal(a, generate(m, lab, seed=0))
    assert not np.array_equal(a, generate(m, lab, seed=1))
    b = generate(m, lab, seed=0, controls=StyleControls(class_styles={0: (7, 1.0)}))
    assert not np.array_equal(a, b)                                   # sky's code redrawn
    # a multimodal model: the eval protocol reports LPIPS diversity across seeds
    from engine.eval.protocol import Evaluator
    row = Evaluator(str(tiny_camvid), "train", fd_floor=False, diversity_images=2).evaluate(m)
    assert row["lpips_diversity"] > 0 and row["images"] == 6


def test_loss_log_gains_columns_when_the_losses_change(tmp_path):
    """A resumed run, or SIMGAN's warm-up handing over to the paper's losses, reports other loss names:
    every row keeps its values under the right column, and new columns are added, empty before."""
    import csv

    from engine.train.trainer import LossLog

    p = tmp_path / "log.csv"
    log = LossLog(p)
    log.write({"step": 10, "wall_seconds": 1.0, "cpu_seconds": 2.0, "size": "8x8", "Pair": 0.5, "D": 0.0})
    log.write({"step": 20, "wall_seconds": 2.0, "cpu_seconds": 4.0, "size": "8x8", "Pair": 0.4, "D": 0.0})
    log = LossLog(p)                                    # resumed: the header is read back
    log.write({"step": 30, "wall_seconds": 3.0, "cpu_seconds": 6.0, "size": "8x8", "Pair": 0.3, "D": 0.7,
               "GAN": 1.5, "Cycle": 0.2})
    log.write({"step": 40, "wall_seconds": 4.0, "cpu_seconds": 8.0, "size": "8x8", "D": 0.6, "GAN": 1.4})
    with open(p, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["step", "wall_seconds", "cpu_seconds", "size", "Cycle", "D", "GAN", "Pair"]
    assert [r["step"] for r in rows] == ["10", "20", "30", "40"]
    assert rows[1]["Pair"] == "0.4" and rows[1]["GAN"] == "" and rows[1]["D"] == "0.0"
    assert rows[2]["GAN"] == "1.5" and rows[2]["Cycle"] == "0.2" and rows[2]["Pair"] == "0.3"
    assert rows[3]["Pair"] == "" and rows[3]["D"] == "0.6"
    assert not (tmp_path / "log.csv.tmp").exists()

"""S-Flow GAN: edge maps, synthetic-motion pairs with exact flow, the flow loss, export, generation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.labels.edges import edges_for, label_edges, laplacian_edges
from engine.train.export import export_run
from engine.train.trainer import SFlowTrainer, TrainConfig, make_trainer, motion_pair, random_homography, warp_by_flow


def _photo(camvid, i=0, size=(128, 96)):
    names = sorted(p.name for p in (camvid / "train").iterdir())
    img = np.asarray(Image.open(camvid / "train" / names[i]).convert("RGB").resize(size, Image.BICUBIC))
    lab = np.asarray(Image.open(camvid / "trainannot" / names[i]).resize(size, Image.NEAREST)).astype(np.int32)
    return img, lab


def test_laplacian_edges_follow_the_photo_and_label_edges_the_boundaries(camvid):
    img, lab = _photo(camvid)
    e = laplacian_edges(img)
    assert e.dtype == np.float32 and set(np.unique(e)) <= {0.0, 1.0}
    assert 0.03 < e.mean() < 0.5
    assert laplacian_edges(np.full_like(img, 128)).sum() == 0                  # flat: no edges
    assert laplacian_edges(img, threshold=60).sum() < e.sum()                  # the threshold thins them
    with pytest.raises(ValueError, match="kernel size"):
        laplacian_edges(img, ksize=4)
    le = label_edges(lab)
    step = lab[:, 1:] != lab[:, :-1]                        # a horizontal label change marks both pixels
    assert step.any() and le[:, 1:][step].all() and le[:, :-1][step].all()
    assert le.mean() < 0.5
    assert label_edges(np.zeros((8, 8), int)).sum() == 0
    # no frame: label boundaries at the asked size; a frame: its edges at that size
    assert np.array_equal(edges_for(lab, None), le)
    assert edges_for(lab, img, (64, 48)).shape == (48, 64)


def test_motion_pairs_carry_their_exact_flow(camvid):
    img, lab = _photo(camvid)
    rng = np.random.default_rng(3)
    h = random_homography(128, 96, rng, 6.0)
    img2, lab2, flow, valid = motion_pair(img, lab, h)
    assert img2.shape == img.shape and lab2.dtype == lab.dtype and 0.8 < valid.mean() < 1.0
    assert 0.5 < np.abs(flow).mean() < 12
    a = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float()
    back = warp_by_flow(a, torch.from_numpy(flow)[None])[0].permute(1, 2, 0).numpy()
    err = np.abs(back - img2)[valid].mean()
    assert err < 0.15 * np.abs(img.astype(float) - img2).mean()               # frame t carried = frame t+1
    assert set(np.unique(lab2)) <= set(np.unique(lab))                         # nearest: no new ids


def test_sflow_trains_with_the_flow_loss_exports_and_generates(tiny_camvid, tmp_path, camvid):
    from engine.registry import StyleControls, generate, load_model

    cfg = TrainConfig(family="sflow", data=str(tiny_camvid), labelset="camvid_11", size=(64, 48), batch=2, steps=2,
                      ngf=4, n_downsample_global=2, n_blocks_global=1, ndf=8, n_layers_D=2, num_D=1,
                      vgg_scale=0.5, save_every=1, sample_every=2, log_every=1, threads=2, label_edge_prob=0.5)
    tr = make_trainer(cfg, tmp_path / "run", log=lambda m: None)
    assert isinstance(tr, SFlowTrainer)
    seg, real, (flow, mask) = tr.batch_for(0)
    assert seg.shape == (4, 13, 48, 64) and real.shape == (4, 3, 48, 64) and flow.shape == (2, 48, 64, 2)
    # the second half of the batch is the first moved by the flow
    carried = warp_by_flow(real[:2], flow)
    assert ((real[2:] - carried).abs() * mask).sum() / mask.sum() < 0.3 * (real[2:] - real[:2]).abs().mean()
    assert torch.equal(tr.batch_for(0)[0], seg)                                # (seed, step) decide the batch
    g0 = tr.G.state_dict()["model.1.weight"].clone()
    losses = tr.train_step(seg, real, (flow, mask))
    assert {"Flow", "GAN", "GAN_Feat", "VGG", "D"} == set(losses) and losses["Flow"] > 0
    assert not torch.equal(g0, tr.G.state_dict()["model.1.weight"])
    tr.fit()
    assert (tmp_path / "run" / "samples" / "step_000002.png").exists()
    card = export_run(tmp_path / "run", tmp_path / "m", "sflow_tiny")
    assert card["family"] == "sflow" and card["capabilities"]["video"] and card["edges"]["kind"] == "laplacian"
    m = load_model(tmp_path / "m")
    img, lab = _photo(camvid, 3, (64, 48))
    a = generate(m, lab, seed=0, controls=StyleControls(frame=img))
    ref = generate(m, lab, seed=0, controls=StyleControls(frame=img), reference=True)
    assert a.shape == (48, 64, 3) and np.abs(a.astype(int) - ref).max() <= 1          # fast path = reference
    assert not np.array_equal(a, generate(m, lab, seed=0))                            # frame edges matter
    e = np.zeros((48, 64), np.float32)
    assert not np.array_equal(generate(m, lab, controls=StyleControls(edges=e)), generate(m, lab))


@pytest.fixture(scope="module")
def tiny_spade(tiny_camvid, tmp_path_factory):
    """A one-step SPADE model on tiny CamVid (64x64), exported: the S-Flow start and teacher."""
    root = tmp_path_factory.mktemp("tiny_spade")
    spade_cfg = TrainConfig(family="spade", data=str(tiny_camvid), labelset="camvid_11", size=(64, 64), batch=2,
                            steps=1, ngf=4, nhidden=8, ndf=8, n_layers_D=2, num_D=1, lambda_vgg=0.0,
                            save_every=1, sample_every=0, log_every=1, threads=2)
    make_trainer(spade_cfg, root / "run", log=lambda m: None).fit()
    export_run(root / "run", root / "spade_tiny", "spade_tiny")
    return root / "spade_tiny"


def test_sflow_on_spade_starts_as_the_spade_model_and_learns_the_edges(tiny_camvid, tiny_spade, tmp_path, camvid):
    """backbone spade + init_from: the generator starts as the trained SPADE model exactly (the edge
    channel's weights are zero), trains with the flow loss, exports in float16 and generates with edges."""
    from engine.registry import StyleControls, generate, load_model

    src = load_model(tiny_spade)
    cfg = TrainConfig(family="sflow", data=str(tiny_camvid), labelset="camvid_11", size=(64, 64), batch=2, steps=2,
                      backbone="spade", init_from=str(tiny_spade), ngf=99, ndf=8, n_layers_D=2, num_D=1,
                      lambda_vgg=0.0, save_every=1, sample_every=2, log_every=1, threads=2, label_edge_prob=0.5)
    tr = make_trainer(cfg, tmp_path / "run", log=lambda m: None)
    assert tr.mcfg.ngf == 4 and tr.mcfg.nhidden == 8 and tr.mcfg.semantic_nc == 13     # the source's shapes
    w = tr.G.state_dict()["fc.weight"]
    assert w.shape[1] == 13 and not w[:, 12].any() and w[:, :12].any()
    seg, real, motion = tr.batch_for(0)
    tr.G.eval()
    with torch.no_grad():
        start = tr.G(seg[:1])
        same = src.generator(seg[:1, :12])
    assert (start - same).abs().max() < 1e-5                       # the run starts as the SPADE model
    losses = tr.train_step(seg, real, motion)
    assert {"Flow", "GAN", "GAN_Feat", "D"} <= set(losses)
    assert tr.G.state_dict()["fc.weight"][:, 12].any()              # the edge channel learns
    tr.fit()
    card = export_run(tmp_path / "run", tmp_path / "m", "sflow_spade_tiny", half=True)
    assert card["family"] == "sflow" and card["initialised_from"]["model"] == "spade_tiny"
    assert "hinge" in card["training"]["losses"] and card["training"]["weights_dtype"].startswith("float16")
    m = load_model(tmp_path / "m")
    img, lab = _photo(camvid, 3, (64, 64))
    a = generate(m, lab, controls=StyleControls(frame=img))
    ref = generate(m, lab, controls=StyleControls(frame=img), reference=True)
    assert a.shape == (64, 64, 3) and np.abs(a.astype(int) - ref).max() <= 1          # fast path = reference
    assert not np.array_equal(a, generate(m, lab))                                     # frame edges matter
    # a source on another label set, or not SPADE, is refused in plain words
    bad = TrainConfig(family="sflow", data=str(tiny_camvid), labelset="cityscapes_35", size=(64, 64),
                      init_from=str(tmp_path / "m"), backbone="spade")
    with pytest.raises(ValueError, match="S-Flow needs a SPADE model"):
        make_trainer(bad, tmp_path / "bad", log=lambda m: None)
    with pytest.raises(ValueError, match="needs backbone 'spade'"):
        make_trainer(TrainConfig(family="sflow", data=str(tiny_camvid), init_from="x"), tmp_path / "b2")


def test_sflow_learns_from_a_teacher(tiny_camvid, tiny_spade, tmp_path):
    """teacher: an L1 term to the SPADE teacher's image of each label map (its own fast path, no
    gradients); the card names the teacher; a teacher that needs more than the labels is refused."""
    from engine.registry import load_model

    cfg = TrainConfig(family="sflow", data=str(tiny_camvid), labelset="camvid_11", size=(64, 64), batch=2, steps=1,
                      ngf=4, n_downsample_global=2, n_blocks_global=1, ndf=8, n_layers_D=2, num_D=1,
                      lambda_vgg=0.0, teacher=str(tiny_spade), lambda_teacher=5.0, save_every=1, sample_every=0,
                      log_every=1, threads=2)
    tr = make_trainer(cfg, tmp_path / "run", log=lambda m: None)
    seg, real, motion = tr.batch_for(0)
    teacher = load_model(tiny_spade)
    with torch.no_grad():
        want = teacher.generator(seg[:, :12], None)
    got = tr.teacher_images(seg)
    assert got.shape == real.shape and not got.requires_grad and (got - want).abs().max() < 1e-4
    with torch.no_grad():
        fake = tr.G(seg)
    expect = float((fake - got).abs().mean()) * 5.0
    losses = tr.train_step(seg, real, motion)
    assert abs(losses["Teacher"] - expect) < 1e-3 * max(1.0, expect)      # L1 to the teacher, weighted
    tr.fit()
    card = export_run(tmp_path / "run", tmp_path / "m", "taught")
    assert card["teacher"]["model"] == "spade_tiny" and card["teacher"]["lambda"] == 5.0
    bad = TrainConfig(family="sflow", data=str(tiny_camvid), size=(64, 64), teacher=str(tmp_path / "m"))
    with pytest.raises(ValueError, match="distillation needs a SPADE model"):
        make_trainer(bad, tmp_path / "bad", log=lambda m: None)


def test_spade_kernel_shrink_keeps_uniform_regions_and_runs_as_lookups(tiny_camvid, tiny_spade, tmp_path, camvid):
    """spade_ks 1: every 3x3 SPADE kernel becomes the sum of its taps, which is the same modulation
    wherever a pixel's 5x5 neighbourhood is one label; the run continues from an S-Flow model, the
    exported model's fast path (per-key look-ups) equals its reference, and growing kernels is refused."""
    from engine.models.blocks import SPADE
    from engine.registry import StyleControls, generate, load_model
    from engine.train.trainer import shrink_spade_kernels

    torch.manual_seed(0)
    big, small = SPADE("batch", 8, 5, nhidden=6, ks=3).eval(), SPADE("batch", 8, 5, nhidden=6, ks=1).eval()
    small.load_state_dict(shrink_spade_kernels(big.state_dict(), small.state_dict()))
    seg = torch.zeros(1, 5, 16, 16)
    seg[:, 1, :, :8] = 1
    seg[:, 3, :, 8:] = 1
    x = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        d = (big(x, seg) - small(x, seg)).abs()
    inner = torch.zeros(16, 16, dtype=torch.bool)
    inner[2:-2, 2:6] = inner[2:-2, 10:14] = True
    assert d[..., inner].max() < 1e-5 and d[..., ~inner].max() > 1e-3     # same inside, differs at edges

    first = tmp_path / "first"
    cfg = TrainConfig(family="sflow", data=str(tiny_camvid), labelset="camvid_11", size=(64, 64), batch=2, steps=1,
                      backbone="spade", init_from=str(tiny_spade), ndf=8, n_layers_D=2, num_D=1, lambda_vgg=0.0,
                      save_every=1, sample_every=0, log_every=1, threads=2)
    make_trainer(cfg, tmp_path / "run1", log=lambda m: None).fit()
    export_run(tmp_path / "run1", first, "sflow_first")
    cfg = TrainConfig(**{**cfg.__dict__, "init_from": str(first), "spade_ks": 1, "teacher": str(first)})
    tr = make_trainer(cfg, tmp_path / "run2", log=lambda m: None)
    assert tr.mcfg.spade_ks == 1 and tr.mcfg.semantic_nc == 13
    sd = tr.G.state_dict()
    assert sd["up_0.norm_0.mlp_gamma.weight"].shape[2:] == (1, 1)
    src = load_model(first).generator.state_dict()
    assert torch.allclose(sd["up_0.norm_0.mlp_gamma.weight"][..., 0, 0],
                          src["up_0.norm_0.mlp_gamma.weight"].float().sum((2, 3)), atol=1e-6)
    assert torch.equal(sd["conv_img.weight"], src["conv_img.weight"].float())          # the rest is kept
    seg, real, motion = tr.batch_for(0)
    assert "Teacher" in tr.train_step(seg, real, motion)            # an S-Flow teacher reads the edges too
    tr.fit()
    card = export_run(tmp_path / "run2", tmp_path / "m", "sflow_fast_tiny", half=True)
    assert card["options"]["spade_ks"] == 1 and card["initialised_from"]["model"] == "sflow_first"
    m = load_model(tmp_path / "m")
    assert m.fast.lookup and m.fast.ks == 1
    img, lab = _photo(camvid, 3, (64, 64))
    a = generate(m, lab, controls=StyleControls(frame=img))
    ref = generate(m, lab, controls=StyleControls(frame=img), reference=True)
    assert np.abs(a.astype(int) - ref).max() <= 1                                     # fast path = reference
    with pytest.raises(ValueError, match="can only shrink"):
        make_trainer(TrainConfig(**{**cfg.__dict__, "init_from": str(tmp_path / "m"), "spade_ks": 3}),
                     tmp_path / "run3", log=lambda m: None)

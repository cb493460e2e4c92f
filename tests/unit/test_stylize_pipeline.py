"""The stylization pipeline and its CLI: wiring, progress, cancel, bad input (decoders here are random:
what they are worth is measured by the training's PSNR evaluation, not by these tests)."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cards import ModelError
from engine.models.photowct import PhotoWCTNets, load_photowct, write_photowct_folder
from engine.stylize.pipeline import MAX_STYLE_SIDE, Cancelled, PhotoWCT, StylizeError, stylize


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("pwct") / "photowct_random"
    write_photowct_folder(d, PhotoWCTNets().decoder_state(), "photowct_random", "random decoders (tests)")
    return d


@pytest.fixture(scope="module")
def wct(model_dir):
    nets, card = load_photowct(model_dir)
    assert card["family"] == "photowct"
    return PhotoWCT(nets)


def _photo(h, w, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC))
    return img


def test_stylize_stages_and_output(wct):
    content, style = _photo(48, 64, 0), _photo(40, 56, 1)
    seen = []
    res = stylize(wct, content, style, smooth="fast", progress=lambda s, f: seen.append((s, f)))
    assert res.image.shape == content.shape and res.image.dtype == np.uint8
    assert res.stylized.shape == content.shape
    stages = [s for s, _ in seen]
    assert stages.index("encode") < stages.index("wct4") < stages.index("wct1") < stages.index("smooth")
    assert seen[-1] == ("smooth", 1.0)


def test_exact_smoothing_in_the_pipeline(wct):
    content, style = _photo(32, 40, 2), _photo(32, 40, 3)
    res = stylize(wct, content, style, smooth="exact")
    from engine.stylize.smooth import EXACT_TOL

    assert res.info["iterations"] > 0 and res.info["residual"] <= EXACT_TOL
    # smoothing pulls the result towards the content's structure: closer to the unsmoothed image than
    # to anything else, and not identical to it
    assert not np.array_equal(res.image, res.stylized)


def test_cancel_between_stages(wct):
    content, style = _photo(32, 40, 2), _photo(32, 40, 3)
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2
    with pytest.raises(Cancelled):
        stylize(wct, content, style, smooth="none", should_stop=stop)


def test_bad_inputs_give_a_result_or_a_message(wct):
    content = _photo(48, 64, 4)
    grey = np.full((40, 40, 3), 128, np.uint8)
    out = stylize(wct, content, grey, smooth="none").image
    assert out.shape == content.shape
    # a 1-pixel region in both maps: handled (global fallback), no NaN
    cl = np.zeros((48, 64), np.int32)
    cl[5, 5] = 1
    sl = np.zeros((40, 40), np.int32)
    sl[3, 3] = 1
    stylize(wct, content, _photo(40, 40, 5), cl, sl, smooth="none")
    with pytest.raises(StylizeError, match="label map is 10x10"):
        stylize(wct, content, _photo(40, 40, 5), cl, np.zeros((10, 10), np.int32), smooth="none")
    with pytest.raises(StylizeError, match="at least 16x16"):
        stylize(wct, content, np.zeros((8, 8, 3), np.uint8), smooth="none")
    with pytest.raises(StylizeError, match="smoothing must be"):
        stylize(wct, content, grey, smooth="bilateral")


def test_large_style_photo_is_reduced(wct, monkeypatch):
    import engine.stylize.pipeline as pl

    content = _photo(32, 40, 6)
    big = _photo(32 * 8, 40 * 8, 7)
    monkeypatch.setattr(pl, "MAX_STYLE_SIDE", 64)
    sizes = []
    orig = pl._limit_style

    def spy(style, labels, *rest):
        s, lab = orig(style, labels, *rest)
        sizes.append(s.shape)
        return s, lab
    monkeypatch.setattr(pl, "_limit_style", spy)
    assert stylize(wct, content, big, smooth="none").image.shape == content.shape
    assert sizes == [(51, 64, 3)]
    assert MAX_STYLE_SIDE >= 1024


def test_style_photo_needs_no_more_pixels_than_the_content():
    from engine.stylize.pipeline import _limit_style

    s, lab = _limit_style(np.zeros((500, 1000, 3), np.uint8), np.zeros((500, 1000), np.int32), 600)
    assert s.shape == (300, 600, 3) and lab.shape == (300, 600)
    s, _ = _limit_style(np.zeros((500, 1000, 3), np.uint8), None, 100)
    assert s.shape == (128, 256, 3)            # small contents still get a 256 px style
    s, _ = _limit_style(np.zeros((50, 100, 3), np.uint8), None, 600)
    assert s.shape == (50, 100, 3)


def test_colour_masks_pair_regions(wct):
    content, style = _photo(48, 64, 8), _photo(48, 64, 9)
    cm = np.zeros((48, 64, 3), np.uint8)
    cm[:, 32:] = (0, 0, 255)
    sm = np.zeros((48, 64, 3), np.uint8)
    sm[24:] = (0, 0, 255)
    a = stylize(wct, content, style, cm, sm, smooth="none").stylized
    b = stylize(wct, content, style, smooth="none").stylized
    assert not np.array_equal(a, b)


def test_official_layout_and_bad_files(tmp_path):
    torch.save(PhotoWCTNets().state_dict(), tmp_path / "photo_wct.pth")
    nets, _ = load_photowct(tmp_path / "photo_wct.pth")
    assert isinstance(nets, PhotoWCTNets)
    (tmp_path / "trunc.pth").write_bytes((tmp_path / "photo_wct.pth").read_bytes()[:500])
    with pytest.raises(ModelError, match="cannot be read"):
        load_photowct(tmp_path / "trunc.pth")
    torch.save({"d1.conv1_1.weight": torch.zeros(3, 64, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="not PhotoWCT decoders"):
        load_photowct(tmp_path / "partial.pth")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300)


def test_cli_stylize(model_dir, tmp_path):
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray(_photo(40, 48, 10)).save(c)
    Image.fromarray(_photo(40, 48, 11)).save(s)
    out = tmp_path / "o.png"
    r = _cli("stylize", "-m", str(model_dir), "-c", str(c), "-s", str(s), "--smooth", "fast", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (48, 40)
    r = _cli("stylize", "-m", str(model_dir), "-c", str(tmp_path / "missing.png"), "-s", str(s), "-o", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "missing.png" in r.stderr
    r = _cli("stylize", "-m", str(tmp_path / "nope"), "-c", str(c), "-s", str(s), "-o", str(out))
    assert r.returncode == 2 and "not found" in r.stderr


def test_cancel_during_smoothing_and_its_progress(wct):
    content, style = _photo(40, 48, 12), _photo(40, 48, 13)
    seen = []
    res = stylize(wct, content, style, smooth="exact", progress=lambda s, f: seen.append((s, f)))
    fr = [f for s, f in seen if s == "smooth"]
    assert fr[0] == 0.0 and fr[-1] == 1.0 and fr == sorted(fr) and len(fr) > 2, fr
    assert res.info["iterations"] > 10
    calls = []

    def stop_in_solve():            # stages pass the check 6 times; the solve checks every iteration
        calls.append(1)
        return len(calls) > 8
    with pytest.raises(Cancelled, match="during smoothing"):
        stylize(wct, content, style, smooth="exact", should_stop=stop_in_solve)


def test_worker_stylizes_with_progress_and_cancels(model_dir):
    import threading

    from engine.api import StylizeRequest
    from engine.worker import Worker

    events, cv = [], threading.Condition()

    def listen(ev):
        with cv:
            events.append(ev)
            cv.notify_all()

    def wait(job, kinds, timeout=120):
        with cv:
            assert cv.wait_for(lambda: any(e.job_id == job and e.kind in kinds for e in events), timeout), \
                [(e.kind, e.stage) for e in events if e.job_id == job]
            return next(e for e in events if e.job_id == job and e.kind in kinds)

    w = Worker("cpu")
    w.add_listener(listen)
    try:
        content, style = _photo(40, 48, 14), _photo(40, 48, 15)
        job = w.submit(StylizeRequest(content=content, style=style, smooth="exact", model=str(model_dir)))
        ev = wait(job, {"result", "error"})
        assert ev.kind == "result", ev.error
        assert ev.result.image.shape == content.shape and ev.result.info["seconds"] > 0
        stages = [e.stage for e in events if e.job_id == job and e.kind == "progress"]
        assert stages[0] == "loading PhotoWCT" and "wct4" in stages and stages[-1] == "smooth"
        fr = [e.progress for e in events if e.job_id == job and e.kind == "progress"]
        assert fr == sorted(fr)
        # cancelled as soon as it starts: the job ends as cancelled, never as a result
        job2 = w.submit(StylizeRequest(content=content, style=style, model=str(model_dir)))
        wait(job2, {"started"})
        w.cancel(job2)
        assert wait(job2, {"cancelled", "result", "error"}).kind == "cancelled"
        bad = w.submit(StylizeRequest(content=content, style=np.zeros((4, 4, 3), np.uint8), model=str(model_dir)))
        ev = wait(bad, {"error", "result"})
        assert ev.kind == "error" and "16x16" in ev.error
    finally:
        w.shutdown()


def test_large_content_is_transformed_on_a_reduced_copy(wct, monkeypatch):
    import engine.stylize.pipeline as pl

    monkeypatch.setattr(pl, "MAX_TRANSFORM_PIXELS", 32 * 40)
    content, style = _photo(64, 80, 16), _photo(40, 48, 17)
    labels = np.zeros((64, 80), np.int32)
    labels[:, 40:] = 1
    res = stylize(wct, content, style, labels, np.zeros((40, 48), np.int32), smooth="none")
    assert res.image.shape == content.shape and res.info["transform_grid"] == [40, 32]


def test_generate_with_a_style_photo_restyles_models_that_take_none(tmp_path):
    """The demo SPADE model has no style encoder: --style generates, then runs the bundled PhotoWCT."""
    style = tmp_path / "style.png"
    Image.fromarray(_photo(96, 128, 18)).save(style)
    plain, styled = tmp_path / "plain.png", tmp_path / "styled.png"
    r = _cli("generate", "--demo", "--seed", "1", "-o", str(plain))
    assert r.returncode == 0, r.stderr
    r = _cli("generate", "--demo", "--seed", "1", "--style", str(style), "--smooth", "fast", "-o", str(styled))
    assert r.returncode == 0, r.stderr
    assert "restyling" in r.stderr
    a, b = np.asarray(Image.open(plain)), np.asarray(Image.open(styled))
    assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() > 2


def test_cli_auto_labels_street_photos_with_the_segmenter(model_dir, camvid, tmp_path):
    """--auto-labels: photos without a region map are labelled by the bundled segmenter, so the
    transform is per region (the output differs from the whole-image transform)."""
    from engine.cli import main

    names = sorted(p.name for p in (camvid / "val").iterdir())
    paths = []
    for i, n in enumerate((names[0], names[60])):
        p = tmp_path / f"p{i}.png"
        Image.open(camvid / "val" / n).convert("RGB").resize((160, 120), Image.BILINEAR).save(p)
        paths.append(p)
    outs = []
    for extra in ([], ["--auto-labels"]):
        out = tmp_path / f"o{len(outs)}.png"
        assert main(["stylize", "-m", str(model_dir), "-c", str(paths[0]), "-s", str(paths[1]), "--smooth", "none",
                     "-o", str(out), *extra]) == 0
        outs.append(np.asarray(Image.open(out)).astype(int))
    assert outs[0].shape == outs[1].shape == (120, 160, 3)
    assert np.abs(outs[0] - outs[1]).mean() > 1.0


def test_winograd_encoders_and_decoders_compute_the_convolutions(shared, monkeypatch):
    """CPU inference runs the wide VGG convolutions by Winograd: the bundled nets' relu4_1 features
    of a real photo match the direct convolutions', and so does the decoder given the same pools;
    conv1_2 stays direct (its near-equal activations decide pool1's indices, where any rounding
    change moves max-unpooled values by a pixel). Training (autograd) uses the direct ones."""
    import engine.models.photowct as pw

    path = shared / "datasets/photo_style_examples_wct2/content/in17.png"
    img = np.asarray(Image.open(path).convert("RGB").resize((192, 128)))
    nets, _ = load_photowct(None)
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    calls = []
    real = pw.winograd_conv3x3_wide
    monkeypatch.setattr(pw, "winograd_conv3x3_wide", lambda *a, **k: calls.append(a[1].shape) or real(*a, **k))
    with torch.inference_mode():
        monkeypatch.setattr(pw, "WINO_MIN_CHANNELS", 10 ** 9)
        f0, pools = nets.e4(x)
        y0 = nets.d4(f0, pools)
        assert not calls
        monkeypatch.setattr(pw, "WINO_MIN_CHANNELS", 64)
        f1, _ = nets.e4(x)
        y1 = nets.d4(f0, pools)
    assert len(calls) == 7 + 8                             # e4: conv2_1..conv4_1; d4: conv4_1..conv1_2
    assert (f1 - f0).abs().max().item() <= 1e-5 * f0.abs().max().item()
    assert (y1 - y0).abs().max().item() <= 1e-4
    calls.clear()
    nets.e4(x)                                             # grad enabled: direct
    assert not calls

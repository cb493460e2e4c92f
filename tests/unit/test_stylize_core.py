"""PhotoWCT's transform and the two smoothers against the official vectors, plus the behaviour where
the official code would divide by zero or leave pixels unstyled."""
import numpy as np
import pytest
import torch

from engine.stylize import smooth
from engine.stylize.wct import feature_wct, label_info, wct_core


@pytest.fixture(scope="module")
def wct_vec(vectors):
    return torch.load(vectors / "fastphotostyle_wct_core.pt", weights_only=True)


@pytest.fixture(scope="module")
def smooth_vec(vectors):
    return torch.load(vectors / "fastphotostyle_smoothing.pt", weights_only=True)


def test_wct_matches_vector_whole_image(wct_vec):
    i = wct_vec["inputs"]
    out = feature_wct(i["cont_feat"], i["styl_feat"])
    assert out.shape == wct_vec["output"]["no_seg"].shape
    assert (out - wct_vec["output"]["no_seg"]).abs().max().item() <= 1e-4


def test_wct_matches_vector_region_wise(wct_vec):
    i = wct_vec["inputs"]
    cs, ss = i["cont_seg"].numpy(), i["styl_seg"].numpy()
    assert label_info(cs, ss) == {int(k): bool(v) for k, v in zip(wct_vec["config"]["label_set"],
                                                                   wct_vec["config"]["label_indicator"])}
    out = feature_wct(i["cont_feat"], i["styl_feat"], cs, ss)
    assert (out - wct_vec["output"]["with_seg"]).abs().max().item() <= 1e-4
    # and region-wise really differs from whole-image here
    assert (out - wct_vec["output"]["no_seg"]).abs().max().item() > 1e-2


def test_wct_gives_the_style_statistics():
    g = torch.Generator().manual_seed(0)
    cont = torch.randn(8, 500, generator=g, dtype=torch.float64) * 3 + 1
    mix = torch.randn(8, 8, generator=g, dtype=torch.float64)
    styl = mix @ torch.randn(8, 700, generator=g, dtype=torch.float64) - 2
    out = wct_core(cont, styl)
    assert torch.allclose(out.mean(1), styl.mean(1), atol=1e-9)
    # covariance = style covariance after whitening with the content covariance + I (official)
    c = cont - cont.mean(1, keepdim=True)
    cc = c @ c.T / 499
    e, v = torch.linalg.eigh(cc + torch.eye(8, dtype=torch.float64))
    wc = (v * e.rsqrt()) @ v.T @ c
    s = styl - styl.mean(1, keepdim=True)
    sc = s @ s.T / 699
    oc = (out - out.mean(1, keepdim=True))
    assert torch.allclose(oc @ oc.T / 499, _expected_cov(sc, wc), atol=1e-8)


def _expected_cov(sc, wc):
    e, v = torch.linalg.eigh(sc)
    root = (v * e.clamp_min(0).sqrt()) @ v.T
    cw = wc @ wc.T / (wc.shape[1] - 1)
    return root @ cw @ root.T


def test_wct_bad_regions_fall_back_to_the_whole_image():
    """A label only in the content, and a 1-pixel region: the whole-image transform, never NaN."""
    g = torch.Generator().manual_seed(1)
    cont = torch.randn(4, 6, 8, generator=g)
    styl = torch.randn(4, 5, 7, generator=g) * 2 + 3
    cseg = np.zeros((24, 32), np.uint8)
    cseg[:, 16:] = 1          # label 1 is not in the style
    cseg[0, 0] = 2            # one pixel: invalid, and too small for a covariance
    sseg = np.zeros((20, 28), np.uint8)
    out = feature_wct(cont, styl, cseg, sseg)
    assert torch.isfinite(out).all()
    glob = feature_wct(cont, styl)
    right = out[0, :, :, 4:]
    assert torch.allclose(right, glob[0, :, :, 4:], atol=1e-6)
    left = out[0, :, 1:, :4]
    assert not torch.allclose(left, glob[0, :, 1:, :4], atol=1e-3)     # label 0: its own transform


def test_wct_grey_style_gives_its_flat_colour():
    cont = torch.randn(3, 5, 5)
    styl = torch.full((3, 4, 4), 0.25)
    out = feature_wct(cont, styl)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full_like(out, 0.25), atol=1e-5)


@pytest.mark.parametrize("r", [35, 4])
def test_guided_filter_matches_vector(smooth_vec, r):
    i = smooth_vec["inputs"]
    out = smooth.guided_filter(i["content_rgb_uint8"].numpy(), i["init_rgb_uint8"].numpy(), r, 1e-3)
    ref = smooth_vec["output"][f"gif_r{r}_eps0.001"].numpy()
    assert out.dtype == np.uint8 and out.shape == ref.shape
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_propagator_matches_vector(smooth_vec):
    i = smooth_vec["inputs"]
    out = smooth.propagator_official(i["init_rgb_uint8"].numpy(), i["content_rgb_uint8"].numpy())
    ref = smooth_vec["output"]["propagator_beta0.9999"].numpy()
    assert out.shape == ref.shape == (32, 40, 3)
    assert np.abs(out.astype(int) - ref).max() <= 1


def _dense_affinity(img: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """The official __compute_laplacian values, assembled densely window by window (a different route
    from the matrix-free operator)."""
    h, w, _ = img.shape
    n = h * w
    wm = np.zeros((n, n))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            idx = [(y + dy) * w + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            win = img.reshape(n, 3)[idx]
            mu = win.mean(0)
            var = win.T @ win / 9 - np.outer(mu, mu)
            inv = np.linalg.inv(var + eps / 9 * np.eye(3))
            vals = (1 + (win - mu) @ inv @ (win - mu).T) / 9
            wm[np.ix_(idx, idx)] += vals
    return wm


def _dense_system(img: np.ndarray, beta: float = 0.9999) -> np.ndarray:
    wm = _dense_affinity(img)
    d = wm.sum(0) ** -0.5
    return np.eye(wm.shape[0]) - beta * d[:, None] * wm * d[None, :]


def test_diagonals_equal_the_assembled_matrix():
    rng = np.random.default_rng(0)
    img = rng.random((7, 9, 3))
    img[:3, :4] = 0.5                           # a flat patch: the eps-dominated case
    a = _dense_system(img)
    diag = smooth.smoothing_diagonals(torch.from_numpy(img))
    v = rng.random((2, 7, 9))
    got = smooth.diag_apply(diag, torch.from_numpy(v)).numpy()
    want = (a @ v.reshape(2, -1).T).T.reshape(2, 7, 9)
    assert np.abs(got - want).max() <= 1e-10
    # every stored entry is the matrix's (and nothing outside the 5x5 band is missing)
    n = 7 * 9
    dense = np.zeros((n, n))
    for o in range(25):
        dy, dx = o // 5 - 2, o % 5 - 2
        for y in range(7):
            for x in range(9):
                if 0 <= y + dy < 7 and 0 <= x + dx < 9:
                    dense[y * 9 + x, (y + dy) * 9 + x + dx] = diag[o, y, x]
    assert np.abs(dense - a).max() <= 1e-12


def test_exact_smoothing_solves_the_system():
    rng = np.random.default_rng(2)
    cont = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
    styl = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
    b = torch.from_numpy(styl / 255.0)
    c = torch.from_numpy(cont / 255.0)
    v, info = smooth.solve_smoothing(b, c, tol=1e-10)
    assert info["residual"] <= 1e-10
    a = _dense_system(cont / 255.0)
    want = np.linalg.solve(a, (1 - 0.9999) * (styl / 255.0).reshape(-1, 3)).reshape(20, 24, 3)
    assert np.abs(v.numpy() - want).max() <= 1e-6


def test_smoothers_refuse_mismatched_sizes():
    a = np.zeros((10, 12, 3), np.uint8)
    b = np.zeros((12, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="differ in size"):
        smooth.smooth_fast(a, b)
    with pytest.raises(ValueError, match="differ in size"):
        smooth.smooth_exact(a, b)


def test_large_images_are_smoothed_on_a_reduced_grid(shared):
    """Above max_pixels: solved on a reduced grid, brought back with the full-size photo as guide; close to
    the full-grid solution on a real photo, full size, and sharper than plain upsampling."""
    from PIL import Image

    p = sorted((shared / "datasets" / "photo_style_examples_wct2" / "content").glob("*.png"))[0]
    cont = np.asarray(Image.open(p).convert("RGB").resize((160, 120)))
    rng = np.random.default_rng(3)
    styl = np.clip(cont.astype(float)[..., ::-1] * 0.7 + 40 + rng.normal(0, 10, cont.shape), 0, 255).astype(np.uint8)
    full, info_full = smooth.smooth_exact(styl, cont, tol=1e-3)
    low, info = smooth.smooth_exact(styl, cont, tol=1e-3, max_pixels=80 * 60)
    assert low.shape == full.shape and info["grid"] == [80, 60] and "grid" not in info_full

    def psnr(a, b):
        return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b) ** 2))
    plain = np.asarray(Image.fromarray(smooth.smooth_exact(
        np.asarray(Image.fromarray(styl).resize((80, 60), Image.BILINEAR)),
        np.asarray(Image.fromarray(cont).resize((80, 60), Image.BILINEAR)), tol=1e-3)[0]).resize((160, 120),
                                                                                                Image.BILINEAR))
    assert psnr(low, full) > 35                       # measured 40.2 dB
    assert psnr(low, full) > psnr(plain, full) + 5    # plain bilinear upsampling: 27.3 dB

"""Photorealistic smoothing after PhotoWCT: the closed-form solve (exact) and the guided filter (fast).

**Exact** (FastPhotoStyle's ``Propagator``): with W the 3x3-window matting affinity of the content
photo (Levin et al., eps 1e-7) and D its degrees, the output R solves

    (I - beta * D^-1/2 W D^-1/2) R = (1 - beta) Y,      beta = 0.9999

for the stylized image Y, channel by channel. The official code assembles W as a sparse matrix and
factorises it (sparse LU: seconds and gigabytes at 384x512). Here the same matrix is held as its 25
diagonals (a 3x3 window couples pixels at most 2 apart), built window by window in vectorised passes,
and the symmetric positive definite system is solved by Jacobi-preconditioned conjugate gradients, all
three channels at once, on the engine's device; a matrix-vector product is 25 multiply-adds per pixel.
From R = Y, 80-230 iterations (relative residual 0.1; more for a stylized image than for a noisy copy of the
content) give 49-52 dB against the fully converged solution.

**Fast**: He et al.'s colour guided filter (content as the guide, box windows with reflected borders),
as FastPhotoStyle's ``GIFSmoothing`` runs it through OpenCV.
"""
from __future__ import annotations

import time

import numpy as np
import torch

EPS_MATTING = 1e-7
BETA = 0.9999


# ---- exact: the system's 25 diagonals -----------------------------------------------------------------

def _inv3(m: dict) -> dict:
    """Inverse of per-pixel symmetric 3x3 matrices given by entries m[i, j] (i <= j), by cofactors."""
    a00 = m[1, 1] * m[2, 2] - m[1, 2] * m[1, 2]
    a01 = m[0, 2] * m[1, 2] - m[0, 1] * m[2, 2]
    a02 = m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1]
    a11 = m[0, 0] * m[2, 2] - m[0, 2] * m[0, 2]
    a12 = m[0, 1] * m[0, 2] - m[0, 0] * m[1, 2]
    a22 = m[0, 0] * m[1, 1] - m[0, 1] * m[0, 1]
    det = m[0, 0] * a00 + m[0, 1] * a01 + m[0, 2] * a02
    inv = {(0, 0): a00 / det, (0, 1): a01 / det, (0, 2): a02 / det, (1, 1): a11 / det, (1, 2): a12 / det,
           (2, 2): a22 / det}
    for i, j in list(inv):
        inv[j, i] = inv[i, j]
    return inv


def _box_valid(t: torch.Tensor) -> torch.Tensor:
    """Sum over every 3x3 window whose pixels are all inside: (..., H, W) -> (..., H-2, W-2)."""
    h, w = t.shape[-2] - 2, t.shape[-1] - 2
    rows = t[..., 0:h, :] + t[..., 1:h + 1, :] + t[..., 2:h + 2, :]
    return rows[..., 0:w] + rows[..., 1:w + 1] + rows[..., 2:w + 2]


def _window_stats(x: torch.Tensor, eps: float):
    """Per 3x3 window of x (3, H, W): mean (3, h, w) and the inverse of covariance + eps/9 I as its
    entries (symmetric 3x3)."""
    n = 9.0
    mu = _box_valid(x) / n
    c = {}
    for i in range(3):
        for j in range(i, 3):
            c[i, j] = _box_valid(x[i] * x[j]) / n - mu[i] * mu[j] + (eps / n if i == j else 0.0)
    return mu, _inv3(c)


def smoothing_diagonals(content: torch.Tensor, beta: float = BETA, eps: float = EPS_MATTING) -> torch.Tensor:
    """The system matrix A = I - beta D^-1/2 W D^-1/2 of an (H, W, 3) content image in [0, 1] as its
    25 diagonals, built in float64: (25, H, W), entry [o, y, x] = A[(y, x), (y + dy, x + dx)] for
    offset o = (dy + 2) * 5 + (dx + 2) (zero where that neighbour is outside).

    W is the official matting affinity: each 3x3 window k adds (1 + (x_a - mu_k)^T inv_k (x_b - mu_k)) / 9
    to W[a, b] for every pair of its pixels; the pairs are added as 45 vectorised passes (W is
    symmetric). D = W 1 is the number of windows holding a pixel (the (x - mu) terms sum to zero)."""
    x = content.to(torch.float64).permute(2, 0, 1).contiguous()
    hh, ww = x.shape[1:]
    mu, inv = _window_stats(x, eps)
    h, w = mu.shape[1:]
    taps = [(ay, ax) for ay in range(3) for ax in range(3)]
    d = {t: x[:, t[0]:t[0] + h, t[1]:t[1] + w] - mu for t in taps}             # x_a - mu_k
    t_inv = {t: torch.stack([sum(inv[i, j] * d[t][j] for j in range(3)) for i in range(3)]) for t in taps}
    diag = torch.zeros(25, hh, ww, dtype=torch.float64, device=x.device)
    t_inv = {t: ti / 9.0 for t, ti in t_inv.items()}
    v = torch.empty(h, w, dtype=x.dtype, device=x.device)                    # one pair's affinity
    for ia, a in enumerate(taps):
        for b in taps[ia:]:
            # (1 + (x_a - mu)^T inv (x_b - mu)) / 9, in place: 4 passes over the map instead of ~8
            torch.mul(t_inv[a][0], d[b][0], out=v)
            v.addcmul_(t_inv[a][1], d[b][1]).addcmul_(t_inv[a][2], d[b][2]).add_(1.0 / 9.0)
            o = (b[0] - a[0] + 2) * 5 + (b[1] - a[1] + 2)
            diag[o, a[0]:a[0] + h, a[1]:a[1] + w] += v
            if b != a:
                diag[24 - o, b[0]:b[0] + h, b[1]:b[1] + w] += v
    ones = torch.nn.functional.pad(torch.ones(1, h, w, dtype=x.dtype, device=x.device), (2, 2, 2, 2))
    dis = _box_valid(ones)[0].rsqrt()                                           # D^-1/2
    pad = torch.nn.functional.pad(dis, (2, 2, 2, 2))
    for o in range(25):
        dy, dx = o // 5 - 2, o % 5 - 2
        diag[o] *= -beta * dis * pad[2 + dy:2 + dy + hh, 2 + dx:2 + dx + ww]
    diag[12] += 1.0
    return diag


MATVEC_STRIP_BYTES = 1 << 20   # rows of the product per pass: its strip of ``out`` stays in L2 across the 25 taps


def diag_apply(diag: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None = None,
               unit_diagonal: bool = False) -> torch.Tensor:
    """A v for diagonals (25, H, W) and v (C, H, W); ``unit_diagonal``: take diagonal 12 (the main
    one) as all ones without reading it. Row strips of about MATVEC_STRIP_BYTES of output:
    the 24 multiply-adds of a strip then reuse its output from cache instead of streaming the whole
    product 24 times (0.81x per CG solve at 384x512 on 2 cores; the same sums, in the same order)."""
    c, hh, ww = v.shape
    vp = torch.nn.functional.pad(v, (2, 2, 2, 2))
    if out is None:
        out = torch.empty_like(v)
    rows = max(8, MATVEC_STRIP_BYTES // max(1, c * ww * v.element_size()))
    for y0 in range(0, hh, rows):
        y1 = min(hh, y0 + rows)
        o_ = out[:, y0:y1]
        if unit_diagonal:
            o_.copy_(v[:, y0:y1])
        else:
            torch.mul(diag[12, y0:y1], v[:, y0:y1], out=o_)
        for o in range(25):
            if o != 12:
                dy, dx = o // 5 - 2, o % 5 - 2
                o_.addcmul_(diag[o, y0:y1], vp[:, 2 + dy + y0:2 + dy + y1, 2 + dx:2 + dx + ww])
    return out


RESIDUAL_CHECK_EVERY = 4      # CG iterations between checks of the true residual (overshoot <= 3 iterations)


def solve_smoothing(stylized: torch.Tensor, content: torch.Tensor, beta: float = BETA, tol: float = 1e-9,
                    max_iter: int = 5000, dtype=torch.float64, progress=None,
                    should_stop=None) -> tuple[torch.Tensor, dict]:
    """R solving (I - beta D^-1/2 W D^-1/2) R = (1 - beta) Y for (H, W, 3) images in [0, 1]
    (``content`` builds W): Jacobi-preconditioned CG on the system's 25 diagonals, from R = Y, all
    channels at once, until each channel's residual is ``tol`` relative to its right-hand side
    (checked every RESIDUAL_CHECK_EVERY iterations).
    The preconditioner is folded into the system: with S = diag(A)^-1/2, plain CG on S A S (unit
    diagonal) for S^-1 R is Jacobi-preconditioned CG on A, without a preconditioner pass and its inner
    product per iteration. The matrix is built in float64; ``dtype`` is the precision of the iterations.
    Returns R (H, W, 3) and {iterations, residual}."""
    t0 = time.perf_counter()
    diag = smoothing_diagonals(content, beta)
    hh, ww = diag.shape[1:]
    sc = diag[12].rsqrt()
    scp = torch.nn.functional.pad(sc, (2, 2, 2, 2))
    for o in range(25):
        dy, dx = o // 5 - 2, o % 5 - 2
        diag[o] *= sc * scp[2 + dy:2 + dy + hh, 2 + dx:2 + dx + ww]
    diag = diag.to(dtype)
    sc = sc.to(dtype)
    t_build = time.perf_counter() - t0
    y = stylized.to(device=diag.device, dtype=dtype).permute(2, 0, 1).contiguous()
    rhs = (1.0 - beta) * y
    x = y / sc                                   # the unknown of the scaled system, from R = Y
    r = rhs * sc - diag_apply(diag, x, unit_diagonal=True)
    p = r.clone()
    ap = torch.empty_like(p)

    def chan(t):
        return t.flatten(1)

    def dot(a, b):                    # per-channel inner products, no temporaries
        return torch.linalg.vecdot(chan(a), chan(b))

    bnorm = chan(rhs).norm(dim=1).clamp_min(1e-30)

    def residual() -> float:          # of the original system: its residual is S^-1 r
        return (chan(r / sc).norm(dim=1) / bnorm).max().item()

    rr = dot(r, r)
    it = 0
    res = residual()
    stopped = False
    while res > tol and it < max_iter:
        if should_stop is not None and should_stop():
            stopped = True
            break
        diag_apply(diag, p, ap, unit_diagonal=True)
        alpha = (rr / dot(p, ap).clamp_min(1e-30)).view(-1, 1, 1)
        x.addcmul_(p, alpha)
        r.addcmul_(ap, alpha, value=-1.0)
        it += 1
        if it % RESIDUAL_CHECK_EVERY == 0:
            res = residual()
            if progress is not None:
                progress(it, res)
            if res <= tol:
                break
        rr_new = dot(r, r)
        torch.addcmul(r, p, (rr_new / rr.clamp_min(1e-30)).view(-1, 1, 1), out=p)     # p = r + b p
        rr = rr_new
    if it % RESIDUAL_CHECK_EVERY:
        res = residual()
    x.mul_(sc)
    info = {"iterations": it, "residual": res, "build_s": round(t_build, 3),
            "solve_s": round(time.perf_counter() - t0 - t_build, 3)}
    if stopped:
        info["stopped"] = True
    return x.permute(1, 2, 0), info


def _to_unit(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).to(torch.float64) / 255.0


def _edge_pad(a: np.ndarray, p: int) -> np.ndarray:
    return np.pad(a, ((p, p), (p, p), (0, 0)), mode="edge")


def propagator_official(stylized_rgb: np.ndarray, content_rgb: np.ndarray, beta: float = BETA,
                        device=None, **kw) -> np.ndarray:
    """FastPhotoStyle's ``Propagator.process`` exactly, (H, W, 3) uint8 in -> (H-4, W-4, 3) uint8 out:
    crop 2 px, content resized to that (PIL bilinear), both edge-padded by 2, solve, crop, truncate."""
    from PIL import Image

    h1, w1 = stylized_rgb.shape[:2]
    h, w = h1 - 4, w1 - 4
    b = stylized_rgb[2:2 + h, 2:2 + w].astype(np.float64) / 255.0
    cont = np.asarray(Image.fromarray(np.ascontiguousarray(content_rgb)).resize((w, h), Image.BILINEAR))
    b = torch.from_numpy(_edge_pad(b, 2))
    c = _to_unit(_edge_pad(cont, 2))
    if device is not None:
        b, c = b.to(device), c.to(device)
    v, _ = solve_smoothing(b, c, beta, **kw)
    v = v[2:2 + h, 2:2 + w].cpu().numpy()
    return np.clip(v * 255.0, 0, 255.0).astype(np.uint8)


EXACT_TOL = 0.1         # relative residual. Against the official sparse LU's uint8 result on the bench's
                        # 512x384 PhotoWCT output: 0.1 -> 232 iterations, 50.5 dB; 0.12 -> 220, 49.2 dB;
                        # 0.15 -> 208, 47.9 dB (RMS error ~1 grey level); 0.2 -> 192, 46.0 dB. Starting
                        # from a guided-filter result saves ~3 %, from a half-size solve ~15 % of the
                        # iterations (not worth the coarse solve)


def reduced_size(w: int, h: int, max_pixels: int, minimum: int) -> tuple[int, int]:
    """(W, H) with the aspect of w x h and about ``max_pixels`` pixels, no side below ``minimum``."""
    f = (max_pixels / (h * w)) ** 0.5
    return max(minimum, round(w * f)), max(minimum, round(h * f))


EXACT_MAX_PIXELS = 1024 * 768  # larger images are smoothed on a reduced grid and upsampled with the photo


def smooth_exact(stylized_rgb: np.ndarray, content_rgb: np.ndarray, beta: float = BETA, device=None,
                 tol: float = EXACT_TOL, dtype=torch.float32, max_pixels: int = EXACT_MAX_PIXELS,
                 **kw) -> tuple[np.ndarray, dict]:
    """The closed-form smoothing: the official system on the image edge-padded by 2 (so border pixels
    have whole windows, as the official code arranges by cropping), rounded to uint8. Iterates in
    ``dtype`` to a relative residual of ``tol``. Above ``max_pixels`` the system is solved on a reduced
    grid and the result upsampled with the full-size photo as the guide (:func:`guided_upsample`)."""
    if stylized_rgb.shape != content_rgb.shape:
        raise ValueError(f"stylized image {stylized_rgb.shape[1::-1]} and content {content_rgb.shape[1::-1]} "
                         "differ in size")
    h, w = content_rgb.shape[:2]
    if h * w > max_pixels:
        # a reduced grid, brought back to full size by the full-size photo (guided upsampling)
        from PIL import Image

        size = reduced_size(w, h, max_pixels, 8)
        c_low = np.asarray(Image.fromarray(content_rgb).resize(size, Image.BILINEAR))
        s_low = np.asarray(Image.fromarray(stylized_rgb).resize(size, Image.BILINEAR))
        r_low, info = smooth_exact(s_low, c_low, beta, device, tol, dtype, max_pixels=max_pixels, **kw)
        info = {**info, "grid": list(size), "upsampled": "guided"}
        return guided_upsample(content_rgb, c_low, r_low), info
    b = _to_unit(_edge_pad(stylized_rgb, 2))
    c = _to_unit(_edge_pad(content_rgb, 2))
    if device is not None:
        b, c = b.to(device), c.to(device)
    v, info = solve_smoothing(b, c, beta, tol=tol, dtype=dtype, **kw)
    v = v[2:-2, 2:-2].double().cpu().numpy()
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8), info


# ---- fast: colour guided filter ----------------------------------------------------------------------

def _box(a: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows with reflected borders (OpenCV BORDER_REFLECT) of a 2-D CPU map;
    the result shares memory with OpenCV's."""
    import cv2

    return torch.from_numpy(cv2.boxFilter(a.contiguous().numpy(), -1, (2 * r + 1, 2 * r + 1), normalize=True,
                                          borderType=cv2.BORDER_REFLECT))


def guided_coefficients(guide: np.ndarray, src: np.ndarray, r: int, eps: float):
    """The colour guided filter's window-averaged linear model, per source channel c: a list of
    ([a_0, a_1, a_2], b) 2-D maps with output_c = sum_k a_k * guide[..., k] + b (raw value scale).
    Statistics in float64 (33 OpenCV box filters; ~150 vector operations by torch over the cores),
    the window averages of a and b (well scaled by then) in float32."""
    g = [torch.from_numpy(np.ascontiguousarray(guide[..., k], dtype=np.float64)) for k in range(3)]
    mi = [_box(gk, r) for gk in g]
    var = {}
    for i in range(3):
        for j in range(i, 3):
            var[i, j] = _box(g[i] * g[j], r) - mi[i] * mi[j]
            if i == j:
                var[i, j] += eps
    inv = _inv3(var)
    out = []
    for ch in range(src.shape[2]):
        p = torch.from_numpy(np.ascontiguousarray(src[..., ch], dtype=np.float64))
        mp = _box(p, r)
        cov = [_box(g[k] * p, r) - mi[k] * mp for k in range(3)]
        a = [inv[i, 0] * cov[0] + inv[i, 1] * cov[1] + inv[i, 2] * cov[2] for i in range(3)]
        b = mp - a[0] * mi[0] - a[1] * mi[1] - a[2] * mi[2]
        out.append(([_box(ak.float(), r) for ak in a], _box(b.float(), r)))
    return out


def _apply_linear(coef, guide: np.ndarray) -> np.ndarray:
    g = [torch.from_numpy(np.ascontiguousarray(guide[..., k], dtype=np.float32)) for k in range(3)]
    out = torch.empty(guide.shape[:2] + (len(coef),), dtype=torch.uint8)
    for ch, (a, b) in enumerate(coef):
        v = a[0] * g[0] + a[1] * g[1] + a[2] * g[2] + b
        out[..., ch] = v.round_().clamp_(0, 255)
    return out.numpy()


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s colour guided filter on raw 0..255 values: (H, W, 3) guide, (H, W, C) source, box
    windows (2r+1)^2 with reflected borders (OpenCV BORDER_REFLECT), output rounded to uint8."""
    return _apply_linear(guided_coefficients(guide, src, r, eps), guide)


def guided_upsample(guide_full: np.ndarray, guide_low: np.ndarray, result_low: np.ndarray, r: int = 2,
                    eps: float = 1e-4) -> np.ndarray:
    """Bring a result computed on a reduced grid back to full size (He and Sun's fast guided filter):
    fit the local linear model result ~ a * guide + b on the reduced grid, upsample a and b smoothly,
    and apply them to the full-resolution guide, so edges come from the full-size photo."""
    import cv2

    coef = guided_coefficients(guide_low, result_low, r, eps * 255.0 ** 2)     # eps on the [0, 1] scale
    h, w = guide_full.shape[:2]

    def up(m):
        return torch.from_numpy(cv2.resize(m.numpy(), (w, h), interpolation=cv2.INTER_LINEAR))
    return _apply_linear([([up(ak) for ak in a], up(b)) for a, b in coef], guide_full)


def smooth_fast(stylized_rgb: np.ndarray, content_rgb: np.ndarray, r: int = 35, eps: float = 1e-3) -> np.ndarray:
    """FastPhotoStyle's fast mode (``GIFSmoothing(r=35, eps=0.001)``)."""
    if stylized_rgb.shape != content_rgb.shape:
        raise ValueError(f"stylized image {stylized_rgb.shape[1::-1]} and content {content_rgb.shape[1::-1]} "
                         "differ in size")
    return guided_filter(content_rgb, stylized_rgb, r, eps)

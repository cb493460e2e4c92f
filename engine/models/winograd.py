"""Winograd F(4x4, 3x3) convolution for wide maps of moderate width (64-512 channels).

The 3x3 convolution as 36 independent products per 6x6 input tile (4x4 outputs): 2.25 multiplies per
output and channel pair instead of 9. The tile transforms are applied separably (rows, then columns)
with the transform matrices' few non-zeros written out as sums of strided views, a couple of tile
rows at a time, so every intermediate stays in cache; the 36 products are one batched product.
Measured on the 2-core CPU against oneDNN's direct convolution (same process, fp32): 64 channels at
1024x512 1.2x, 128 channels at 256x192 1.75x, 256 channels at 128x96 2.2x; max abs difference ~1e-5
of the output's scale. (:func:`engine.models.pix2pixhd_fast.winograd_conv3x3` is the variant for
very many channels on small maps, where the weight transform is streamed instead.)
"""
from __future__ import annotations

import torch

WINO_TILE_ROWS = 2          # tile rows (4 output rows each) per step: 1 is slower, 4 no faster

# F(4x4, 3x3) at the points 0, +-1, +-2 (and infinity). The weight transform G; the input and output
# transforms are written out as sums in _bt (B^T rows: 4 0 -5 0 1 0 | 0 -4 -4 1 1 0 | 0 4 -4 -1 1 0 |
# 0 -2 -1 2 1 0 | 0 2 -1 -2 1 0 | 0 4 0 -5 0 1) and _at (A^T rows: 1 1 1 1 1 0 | 0 1 -1 2 -2 0 |
# 0 1 1 4 4 0 | 0 1 -1 8 -8 1).
G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))

_WEIGHT_MAT: dict = {}


def weight_transform_matrix(device=None, dtype=torch.float64) -> torch.Tensor:
    """(36, 9): a 3x3 filter, row-major, -> its transform as one product, in the products' order:
    row b * 6 + a holds (G w G^T)[a, b] (b, a: the tile's column and row frequency)."""
    key = (device, dtype)
    if key not in _WEIGHT_MAT:
        g = torch.tensor(G, dtype=torch.float64)
        _WEIGHT_MAT[key] = torch.einsum("ap,bq->bapq", g, g).reshape(36, 9).to(device=device, dtype=dtype)
    return _WEIGHT_MAT[key]


def transform_weights(w: torch.Tensor) -> torch.Tensor:
    """(K, C, 3, 3) weights -> (36, C, K) products' right-hand sides (:func:`weight_transform_matrix`'s
    order; computed in float64)."""
    k, c = w.shape[:2]
    u = weight_transform_matrix(w.device) @ w.double().reshape(k * c, 9).T       # (36, K * C)
    return u.to(w.dtype).view(36, k, c).transpose(1, 2).contiguous()


def _bt(x, out) -> None:
    """out[0..5] = B^T x along the list ``x`` of six equally shaped tensors (views allowed)."""
    x0, x1, x2, x3, x4, x5 = x
    torch.add(x4, x2, alpha=-4, out=out[1])
    t = torch.add(x3, x1, alpha=-4)
    torch.sub(out[1], t, out=out[2])
    out[1].add_(t)
    torch.sub(x4, x2, out=out[3])
    t = torch.sub(x3, x1).mul_(2)
    torch.sub(out[3], t, out=out[4])
    out[3].add_(t)
    torch.add(x4, x0, alpha=4, out=out[0]).add_(x2, alpha=-5)
    torch.add(x5, x1, alpha=4, out=out[5]).add_(x3, alpha=-5)


def _at(m, out) -> None:
    """out[0..3] = A^T m along the list ``m`` of six equally shaped tensors."""
    m0, m1, m2, m3, m4, m5 = m
    s1, s2, s3, s4 = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    torch.add(m0, s1, out=out[0]).add_(s3)
    torch.add(s2, s4, alpha=2, out=out[1])
    torch.add(s1, s3, alpha=4, out=out[2])
    torch.add(s2, s4, alpha=8, out=out[3]).add_(m5)


def input_tiles(xr: torch.Tensor, t0: int, n: int, tw: int, tb: torch.Tensor, vb: torch.Tensor) -> torch.Tensor:
    """B^T d B of the 6x6 input tiles of tile rows t0..t0+n-1: ``xr`` the padded input as a contiguous
    (hp, wp, c) tensor (hp = 4 th + 2, wp = 4 tw + 2); ``tb`` (6, >=n, wp, c) and ``vb`` (6, 6, >=n, tw, c)
    scratch. Returns the (b, a, n, tw, c) view of ``vb`` holding them (b, a: column, row frequency)."""
    _, wp, c = xr.shape
    rs = wp * c
    base = xr.storage_offset() + t0 * 4 * rs
    rows = [xr.as_strided((n, wp, c), (4 * rs, c, 1), base + i * rs) for i in range(6)]
    t = tb[:, :n]
    _bt(rows, t)
    st = t.stride()
    cols = [t.as_strided((6, n, tw, c), (st[0], st[1], 4 * c, 1), t.storage_offset() + j * c) for j in range(6)]
    v = vb[:, :, :n]
    _bt(cols, v)
    return v


def output_tiles(m: torch.Tensor, n: int, tw: int, yb: torch.Tensor, dst: torch.Tensor) -> None:
    """A^T M A of the products ``m`` (36 = (b, a), n * tw * k) into ``dst`` (4, 4, n, tw, k) (output row
    p, column q within the tile; any strides); ``yb`` (4, 6, >= n * tw * k) scratch."""
    k = dst.shape[-1]
    y = yb[:, :, :n * tw * k]
    _at(m.view(6, 6, n * tw * k), y)                                      # columns: (q, a, ...)
    _at(y.view(4, 6, n, tw, k).transpose(0, 1), dst)                      # rows: (p, q, n, tw, k)


def winograd_conv3x3_wide(xp: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None,
                          out: torch.Tensor | None = None) -> torch.Tensor:
    """'valid' 3x3 convolution of a padded (1, C, H+2, W+2) tensor with transformed weights ``u``
    (:func:`transform_weights`, (36, C, K)). Any H and W (the last tiles are cut). Returns (or fills
    ``out``, (1, K, H, W)) a channels_last tensor."""
    _, c, hp, wp = xp.shape
    h, wd = hp - 2, wp - 2
    k = u.shape[2]
    th, tw = -(-h // 4), -(-wd // 4)
    if (th * 4 + 2, tw * 4 + 2) != (hp, wp):
        xp = torch.nn.functional.pad(xp, (0, tw * 4 + 2 - wp, 0, th * 4 + 2 - hp))
        hp, wp = th * 4 + 2, tw * 4 + 2
    xr = xp[0].permute(1, 2, 0)
    if not xr.is_contiguous():
        xr = xr.contiguous()
    if out is None:
        out = torch.empty(1, k, h, wd, dtype=xp.dtype, device=xp.device, memory_format=torch.channels_last)
    exact = (th * 4, tw * 4) == (h, wd) and out[0].permute(1, 2, 0).is_contiguous()
    o = out[0].permute(1, 2, 0)
    g = min(WINO_TILE_ROWS, th)
    kw = dict(dtype=xp.dtype, device=xp.device)
    tb = torch.empty(6, g, wp, c, **kw)               # rows transformed: (a, n, wp, c)
    vb = torch.empty(6, 6, g, tw, c, **kw)            # then columns: (b, a, n, tw, c)
    yb = torch.empty(4, 6, g * tw * k, **kw)          # products, columns back: (q, a, ...)
    zb = None if exact else torch.empty(g, 4, tw, 4, k, **kw)
    for t0 in range(0, th, g):
        n = min(g, th - t0)
        v = input_tiles(xr, t0, n, tw, tb, vb)
        m = torch.bmm(v.reshape(36, n * tw, c), u)
        if exact:
            dst = o.view(th, 4, tw, 4, k)[t0:t0 + n]                      # (n, p, tw, q, k)
        else:
            dst = zb[:n]
        output_tiles(m, n, tw, yb, dst.permute(1, 3, 0, 2, 4))           # (p, q, n, tw, k)
        if not exact:
            r0, r1 = t0 * 4, min(h, (t0 + n) * 4)
            o[r0:r1] = dst.reshape(n * 4, tw * 4, k)[:r1 - r0, :wd]
    if bias is not None:
        out.add_(bias.view(1, -1, 1, 1))
    return out

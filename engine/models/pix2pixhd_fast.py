"""Fast, memory-bounded inference for pix2pixHD generators: the same weights and the same function as
:mod:`engine.models.pix2pixhd` (max abs difference ~1e-5 on tanh outputs), computed differently.

- The 7x7 convolutions that read the one-hot label map are table look-ups: a convolution of a one-hot
  map is, per pixel, the sum of one weight column per tap (``embedding_bag``), ~K times fewer
  operations. The instance-edge bit is folded into the look-up key (key = 2 * class + edge).
- The global generator reads the label map average-pooled (3x3, stride 2). Where a pooling window holds
  one class that input is exactly one-hot; the few windows that straddle a boundary are a sparse
  residual whose contribution is added with one small matrix product and a scatter.
- The same holds one level on: where a stride-2 convolution's window reads one key's constant, its
  output is a constant too. The local down path and the global net's first convolution + first
  downsampling are therefore computed as per-key tables plus the pixels near label boundaries (their
  instance-norm statistics from key counts), with no first-convolution map at all.
- The 1024-channel residual blocks use Winograd F(4x4, 3x3): 4x fewer multiplies, weights transformed on
  the fly in chunks so nothing is stored twice.
- Stride-2 transposed convolutions run as oneDNN's own, in row strips (each strip reads its rows plus
  one); the last convolution's 3 output filters are padded to 8, which oneDNN runs faster.
- Full-resolution layers are streamed in horizontal strips. Instance norm needs whole-image
  statistics, so a strip pass gathers them (float64 sums) and a second pass recomputes the strip and
  normalises it; the second residual convolution writes over its input one strip behind. Peak memory
  is a few half-resolution activations, never a full-resolution 32-channel one; the same strips make
  very large canvases possible with no seams (every value is what the whole-image network computes).

Only the look-up keys (labels, edge bits) and any dense feature channels are needed as input:
:meth:`FastPix2PixHD.forward_labels`. :meth:`FastPix2PixHD.forward` takes the reference's one-hot input.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..devices import trim_heap
from .pix2pixhd import GlobalGenerator, LocalEnhancer, ResnetBlock
from .winograd import input_tiles, output_tiles, transform_weights, weight_transform_matrix, winograd_conv3x3_wide

EPS = 1e-5                      # nn.InstanceNorm2d default, as the official networks use
STRIP_PIXELS = 1 << 14          # output pixels per strip at full resolution
WIDE_WINO_MIN_CHANNELS = 64      # local residual blocks of this many channels or more: Winograd (winograd.py)
RES_STRIP_PIXELS = 1 << 13      # output pixels per strip of a residual block's convolutions (8 rows
                                # of a 1024-wide map: as fast as 16, ~12 MB less peak in temporaries)
SPARSE_MAX_FRACTION = 0.3       # above this share of mixed pooling windows the global input is dense
RESIDUAL_CHUNK = 1024           # residual pixels per matrix product
BAG_CHUNK = 16384               # mixed-window pixels per bag of taps
SPARSE_DOWN_MAX_FRACTION = 0.5  # above this share of mixed outputs a first down path runs densely
FINAL_STRIP_ROWS = 16           # output rows per strip of the last convolution (32: +30 MB peak, no faster)


def _cl(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def _reflect_index(lo: int, hi: int, n: int, device) -> torch.Tensor:
    """Source rows for padded positions ``lo..hi-1`` of an ``n``-long axis under reflection padding."""
    i = torch.arange(lo, hi, device=device).abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def _padded_strip(src: torch.Tensor, row0: int, r0: int, r1: int, hh: int, p: int) -> torch.Tensor:
    """Rows r0..r1-1 of an ``hh``-row map reflection-padded by ``p`` on every side, as one channels_last
    tensor built with one copy. ``src`` holds the map's rows ``row0 ..`` (all that the strip reads)."""
    _, c, _, w = src.shape
    n = r1 - r0 + 2 * p
    s = torch.empty(1, c, n, w + 2 * p, dtype=src.dtype, device=src.device, memory_format=torch.channels_last)
    top, bot = max(0, p - r0), max(0, r1 + p - hh)
    s[:, :, top:n - bot, p:p + w] = src[:, :, r0 - p + top - row0:r1 + p - bot - row0]
    for i in list(range(top)) + list(range(n - bot, n)):
        img = r0 - p + i
        s[:, :, i, p:p + w] = src[:, :, (-img if img < 0 else 2 * (hh - 1) - img) - row0]
    for j in range(p):
        s[:, :, :, j] = s[:, :, :, 2 * p - j]
        s[:, :, :, p + w + j] = s[:, :, :, p + w - 2 - j]
    return s


def _strip_rows(w: int) -> int:
    """Rows per strip for a map ``w`` pixels wide."""
    return max(4, STRIP_PIXELS // max(w, 1))


class _Stats:
    """Per-channel mean and variance of a tensor seen strip by strip (Chan's merge in float64)."""

    def __init__(self, c: int, device):
        self.mean = torch.zeros(c, dtype=torch.float64, device=device)
        self.m2 = torch.zeros(c, dtype=torch.float64, device=device)
        self.n = 0

    def add(self, t: torch.Tensor) -> None:           # t: (1, C, h, w)
        self.add_rows(_pixels(t))

    def add_rows(self, p: torch.Tensor) -> None:      # p: (pixels, C)
        mean, m2, nb = _row_moments(p)
        mean, m2 = mean.double(), m2.double()
        n = self.n + nb
        delta = mean - self.mean
        self.mean += delta * (nb / n)
        self.m2 += m2 + delta * delta * (self.n * nb / n)
        self.n = n

    def scale_shift(self, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        rstd = 1.0 / torch.sqrt(self.m2 / self.n + EPS)
        return rstd.to(dtype).view(1, -1, 1, 1), (-self.mean * rstd).to(dtype).view(1, -1, 1, 1)


def _pixels(t: torch.Tensor) -> torch.Tensor:
    """(pixels, C) view of a channels_last (1, C, H, W) tensor (a copy for other layouts)."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


MOMENT_CHUNK = 1 << 20          # activations per chunk of the squared-deviation pass (4 MB)


def _row_moments(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel mean and sum of squared deviations of pixel rows (pixels, C): two passes."""
    n = p.shape[0]
    mean = p.sum(0) / n
    d = p - mean
    return mean, d.mul_(d).sum(0), n


def _moments(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel mean and sum of squared deviations over contiguous pixel rows (much faster than
    var_mean over the strided dims of a channels_last tensor), one chunk of a few MB at a time: each
    chunk's two passes run in cache and the chunks are merged in float64 (:class:`_Stats`), so a large
    map is read from memory once."""
    p = _pixels(t)
    step = max(1, MOMENT_CHUNK // max(1, p.shape[1]))
    if p.shape[0] <= step:
        return _row_moments(p)
    st = _Stats(p.shape[1], t.device)
    for i in range(0, p.shape[0], step):
        st.add_rows(p[i:i + step])
    return st.mean.to(t.dtype), st.m2.to(t.dtype), st.n


def _table_stats(table: torch.Tensor, counts: torch.Tensor, values: torch.Tensor, n: int):
    """Instance-norm scale and shift (float32 rows) of a map made of ``counts[k]`` pixels equal to
    ``table[k]`` plus the rows ``values``, ``n`` pixels in all (float64 sums, ``values`` in chunks so
    no float64 copy of them is ever whole)."""
    t, c = table.double(), counts.double()
    step = max(1, MOMENT_CHUNK // max(1, values.shape[1]))
    vsum = torch.zeros(values.shape[1], dtype=torch.float64, device=values.device)
    for i in range(0, values.shape[0], step):
        vsum += values[i:i + step].double().sum(0)
    mean = (c @ t + vsum) / n
    m2 = c @ (t - mean).square()
    for i in range(0, values.shape[0], step):
        m2 += (values[i:i + step].double() - mean).square_().sum(0)
    rstd = 1.0 / torch.sqrt(m2 / n + EPS)
    return rstd.to(table.dtype), (-mean * rstd).to(table.dtype)


def _in_relu_(t: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """Instance norm (no affine) [+ ReLU] in place on a (1, C, H, W) tensor; a channels_last one is
    normalised a chunk of pixel rows at a time (its passes in cache)."""
    mean, m2, n = _moments(t)
    rstd = torch.rsqrt(m2 / n + EPS)
    if not t.is_contiguous(memory_format=torch.channels_last):     # no pixel-row view to chunk
        t.sub_(mean.view(1, -1, 1, 1)).mul_(rstd.view(1, -1, 1, 1))
        return t.relu_() if relu else t
    p = _pixels(t)
    step = max(1, MOMENT_CHUNK // max(1, p.shape[1]))
    for i in range(0, p.shape[0], step):
        c = p[i:i + step].sub_(mean).mul_(rstd)
        if relu:
            c.relu_()
    return t


def _norm_(t: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, relu: bool = True) -> torch.Tensor:
    t.mul_(scale).add_(shift)
    return t.relu_() if relu else t


# ---- Winograd F(4x4, 3x3) ------------------------------------------------------------------------

WINO_OUT_CHUNK = 512            # output channels per batched product (256: 1.08x the time per 1024-ch conv)
WINO_MM_COLS = 16384            # columns per product of the weight transform (its output is written while
                                # still in cache: 0.72x the time of one product)


def _mm_t_cols(a: torch.Tensor, rows: torch.Tensor, out: torch.Tensor) -> None:
    """``out = a @ rows.T``, WINO_MM_COLS columns of ``out`` per product (each block written while in cache)."""
    n = rows.shape[0]
    for j in range(0, n, WINO_MM_COLS):
        j1 = min(n, j + WINO_MM_COLS)
        torch.mm(a, rows[j:j1].T, out=out[:, j:j1])


class Workspace:
    """Scratch buffers reused across calls (a run of same-shaped convolutions): large temporaries
    allocated per call are fresh pages every time (page faults cost as much as the arithmetic)."""

    def __init__(self):
        self.bufs: dict = {}

    def get(self, name: str, n: int, like: torch.Tensor) -> torch.Tensor:
        t = self.bufs.get(name)
        if t is None or t.numel() < n or t.dtype != like.dtype or t.device != like.device:
            self.bufs[name] = None
            t = self.bufs[name] = torch.empty(n, dtype=like.dtype, device=like.device)
        return t[:n]


def winograd_conv3x3(xp: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                     ws: Workspace | None = None) -> torch.Tensor:
    """'valid' 3x3 convolution of an already padded (1, C, H+2, W+2) tensor by Winograd F(4x4, 3x3):
    4x fewer multiplies. Worth it for many channels on small maps (the 1024-channel residual blocks);
    the weights are transformed on the fly, WINO_OUT_CHUNK output channels at a time, so nothing is
    stored twice. The tile transforms are winograd.py's separable ones, over all tiles at once (the
    map is small); each chunk's products go back to pixels straight into the output. Returns a
    channels_last tensor; ``ws`` keeps the scratch buffers between calls."""
    kg = weight_transform_matrix(xp.device, xp.dtype)
    ws = ws or Workspace()
    _, c, hp, wp = xp.shape
    h, wd = hp - 2, wp - 2
    th, tw = -(-h // 4), -(-wd // 4)
    if (th * 4 + 2, tw * 4 + 2) != (hp, wp):
        xp = F.pad(xp, (0, tw * 4 + 2 - wp, 0, th * 4 + 2 - hp))
        hp, wp = th * 4 + 2, tw * 4 + 2
    xr = xp[0].permute(1, 2, 0)
    if not xr.is_contiguous():
        xr = xr.contiguous()
    t = th * tw
    v = input_tiles(xr, 0, th, tw, ws.get("tb", 6 * th * wp * c, xp).view(6, th, wp, c),
                    ws.get("v", 36 * t * c, xp).view(6, 6, th, tw, c)).reshape(36, t, c)
    k = w.shape[0]
    out = torch.empty(1, k, h, wd, dtype=xp.dtype, device=xp.device, memory_format=torch.channels_last)
    exact = (th * 4, tw * 4) == (h, wd)
    o = out[0].permute(1, 2, 0)                                            # (h, wd, K) view
    wf = w.reshape(k * c, 9)
    kc0 = min(k, WINO_OUT_CHUNK)
    u = ws.get("u", 36 * kc0 * c, xp)
    m = ws.get("m", 36 * t * kc0, xp)
    yb = ws.get("y", 24 * t * kc0, xp).view(4, 6, t * kc0)
    z = None if exact else ws.get("z", 16 * t * kc0, xp)
    for k0 in range(0, k, kc0):
        k1 = min(k, k0 + kc0)
        kc = k1 - k0
        uc = u[:36 * kc * c].view(36, kc * c)
        _mm_t_cols(kg, wf[k0 * c:k1 * c], uc)                              # weights transformed in place
        mc = m[:36 * t * kc].view(36, t, kc)
        torch.bmm(v, uc.view(36, kc, c).transpose(1, 2), out=mc)
        if exact:
            dst = o.view(th, 4, tw, 4, k)[..., k0:k1]                      # (th, p, tw, q, kc)
        else:
            dst = z[:16 * t * kc].view(th, 4, tw, 4, kc)
        output_tiles(mc, th, tw, yb, dst.permute(1, 3, 0, 2, 4))
        if not exact:
            o[:, :, k0:k1] = dst.reshape(th * 4, tw * 4, kc)[:h, :wd]
    if b is not None:
        out.add_(b.view(1, -1, 1, 1))
    return out


# ---- stride-2 convolutions in strips ----------------------------------------------------------------

CONVT_STRIP_PIXELS = 1 << 16     # output pixels per strip of a stride-2 transposed convolution
S2_STRIP_BYTES = 24 << 20        # padded input per strip of a stride-2 convolution (a block above glibc's
                                 # 32 MB mmap limit is fresh pages every strip)
TRIM_BEFORE_BYTES = 64 << 20     # maps this large are allocated after a heap trim (see _trim_before)


def _trim_before(nbytes: int) -> None:
    """Trim the heap before allocating a map of ``nbytes`` if it is a large one (TRIM_BEFORE_BYTES).

    Trimming hands the freed heap pages back to the system, and every page touched again after it is
    a fresh page fault (zeroed by the kernel, ~2 us each). Trimming between every stage, a 2048x1024
    generation took ~350k faults (0.8 s of system time); the local enhancer now trims only around
    its large allocations (after the trunk, before the last upsamplings' outputs, the residual blocks'
    scratch map and the last stage), not within the sparse stages, the trunk's stride-2 convolutions
    or its first upsamplings, whose freed blocks are reused: ~260k faults, 0.45 s of system time,
    0.91-0.95x the time in interleaved A/Bs, the peak RSS ~20 MB higher (1.46-1.48x the weights)."""
    if nbytes >= TRIM_BEFORE_BYTES:
        trim_heap()


def _conv_transpose_rows(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, a: int, e: int) -> torch.Tensor:
    """Output rows a..e-1 (a even) of ConvTranspose2d(k=3, s=2, p=1, output_padding=1) of ``x``: they
    read input rows a/2 .. ceil(e/2) (the last one only for the odd row before it, where there is one),
    so this is one oneDNN call on those rows."""
    s = x[:, :, a // 2:-(-e // 2) + 1]
    return F.conv_transpose2d(s, w, b, stride=2, padding=1, output_padding=1)[:, :, :e - a]


def _conv_transpose_strips(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """ConvTranspose2d(k=3, s=2, p=1, output_padding=1) of a whole tensor, strip by strip
    (:func:`_conv_transpose_rows`) into one channels_last output."""
    h, wd = x.shape[2], x.shape[3]
    _trim_before(w.shape[1] * 4 * h * wd * x.element_size())
    out = torch.empty(1, w.shape[1], 2 * h, 2 * wd, dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)
    step = max(1, CONVT_STRIP_PIXELS // (4 * wd))
    for m0 in range(0, h, step):
        m1 = min(h, m0 + step)
        out[:, :, 2 * m0:2 * m1] = _conv_transpose_rows(x, w, b, 2 * m0, 2 * m1)
    return out


def _conv_s2_strips(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """3x3 stride-2 convolution, zero padding 1, in strips of output rows into one channels_last
    tensor (oneDNN re-lays a whole-map input out in another format: a second copy of it)."""
    _, _, hh, ww = x.shape
    ho, wo = (hh - 1) // 2 + 1, (ww - 1) // 2 + 1
    _trim_before(w.shape[0] * ho * wo * x.element_size())
    out = torch.empty(1, w.shape[0], ho, wo, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    row_bytes = 2 * (ww + 2) * x.shape[1] * x.element_size()            # padded input per output row
    step = max(1, min(_strip_rows(wo), S2_STRIP_BYTES // row_bytes))
    for q0 in range(0, ho, step):
        q1 = min(ho, q0 + step)
        a, e = max(0, 2 * q0 - 1), min(hh, 2 * q1)                     # input rows read
        s = F.pad(x[:, :, a:e], (1, 1, 1 if q0 == 0 else 0, 2 * q1 - e))
        out[:, :, q0:q1] = F.conv2d(_cl(s), w, b, stride=2)
    return out


def _window_reduce(a: torch.Tensor, k: int, dim: int, op) -> torch.Tensor:
    """``op`` (max or min) over every length-k window along ``dim`` ('valid'), by doubling spans."""
    span = 1
    while span < k:
        s = min(span, k - span)
        n = a.shape[dim] - s
        a = op(a.narrow(dim, 0, n), a.narrow(dim, s, n))
        span += s
    return a


# ---- convolutions of one-hot maps -------------------------------------------------------------------

class _KeyConv:
    """A kxk convolution whose input is a one-hot map (K classes) [+ one binary edge channel]
    [+ dense feature channels], computed from a key map (key = class * 2 + edge, or class)."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor | None, k_onehot: int, edge: bool):
        o, cin, kh, kw = w.shape
        self.k, self.edge, self.kh, self.kw, self.o = k_onehot, edge, kh, kw, o
        taps = w.permute(2, 3, 1, 0).reshape(kh * kw, cin, o)               # tap, Cin, O
        cls = taps[:, :k_onehot]
        if edge:
            cls = torch.stack([cls, cls + taps[:, k_onehot:k_onehot + 1]], 2).reshape(kh * kw, 2 * k_onehot, o)
        self.nkeys = cls.shape[1]
        self.tap_base = (torch.arange(kh * kw, dtype=torch.int32, device=w.device) * self.nkeys).view(kh, kw)
        self.table = cls.reshape(-1, o).contiguous()
        self.tsum = cls.sum(0)                                             # (keys, O): a one-key window
        self.b = b
        nfeat = cin - k_onehot - (1 if edge else 0)
        self.w_feat = _cl(w[:, cin - nfeat:].contiguous()) if nfeat else None
        nres = cin - nfeat                    # residual rows cover the class and edge channels
        self.w_res = w[:, :nres].permute(1, 2, 3, 0).reshape(nres, kh * kw * o).contiguous()

    def mixed(self, keys_p: torch.Tensor) -> torch.Tensor:
        """(Hp-kh+1, Wp-kw+1) bool: the 'valid' windows of a padded key map that hold more than one key
        (separable window max and min)."""
        h, w = keys_p.shape[0] - self.kh + 1, keys_p.shape[1] - self.kw + 1
        out = torch.empty(h, w, dtype=torch.bool, device=keys_p.device)
        step = _strip_rows(w) * 4
        for r0 in range(0, h, step):                 # in strips: a few MB of temporaries at most
            r1 = min(h, r0 + step)
            k = keys_p[r0:r1 + self.kh - 1]
            mx = _window_reduce(_window_reduce(k, self.kw, 1, torch.maximum), self.kh, 0, torch.maximum)
            mn = _window_reduce(_window_reduce(k, self.kw, 1, torch.minimum), self.kh, 0, torch.minimum)
            torch.ne(mx, mn, out=out[r0:r1])
        return out

    def at(self, keys_p: torch.Tensor, pix: torch.Tensor) -> torch.Tensor:
        """(N, O) sums of taps (no bias) at the flat 'valid' output positions ``pix`` of a padded key
        map (Hp, Wp): one bag of taps per pixel, in chunks."""
        kh, kw = self.kh, self.kw
        wp = keys_p.shape[1]
        wout = wp - kw + 1
        out = torch.empty(pix.numel(), self.o, dtype=self.table.dtype, device=keys_p.device)
        off = (torch.arange(kh, device=pix.device)[:, None] * wp + torch.arange(kw, device=pix.device)).view(1, -1)
        flat = keys_p.reshape(-1)
        for i in range(0, pix.numel(), BAG_CHUNK):
            p = pix[i:i + BAG_CHUNK]
            base = (p // wout) * wp + p % wout
            idx = flat[base[:, None] + off] + self.tap_base.view(1, -1)
            out[i:i + BAG_CHUNK] = F.embedding_bag(idx, self.table, mode="sum")
        return out

    def rows(self, keys_p: torch.Tensor, r0: int, r1: int, feat_p: torch.Tensor | None = None,
             mixed_map: torch.Tensor | None = None) -> torch.Tensor:
        """Output rows r0..r1-1 of the 'valid' convolution of a padded key map (Hp, Wp). Where the
        window holds one key the output is that key's sum of taps; elsewhere, one bag of taps per pixel."""
        kh, kw = self.kh, self.kw
        wp = keys_p.shape[1]
        wout = wp - kw + 1
        n = r1 - r0
        strip = keys_p[r0:r1 + kh - 1]
        mixed = (self.mixed(strip) if mixed_map is None else mixed_map[r0:r1]).reshape(-1)
        out = F.embedding(strip[kh // 2:kh // 2 + n, kw // 2:kw // 2 + wout].reshape(-1), self.tsum)
        pix = mixed.nonzero()[:, 0]
        if pix.numel():
            out.index_copy_(0, pix, self.at(strip, pix))
        out = out.view(1, n, wout, self.o).permute(0, 3, 1, 2)            # channels_last NCHW view
        if self.b is not None:
            out = out + self.b.view(1, -1, 1, 1)
        if self.w_feat is not None:
            out = out + F.conv2d(feat_p[:, :, r0:r1 + self.kh - 1], self.w_feat)
        return out

    def conv_into(self, keys_p: torch.Tensor, feat_p: torch.Tensor | None = None) -> torch.Tensor:
        """The whole 'valid' convolution of a padded key map, channels_last, computed in strips."""
        h, w = keys_p.shape[0] - self.kh + 1, keys_p.shape[1] - self.kw + 1
        out = torch.empty(1, self.o, h, w, device=keys_p.device, memory_format=torch.channels_last)
        step = _strip_rows(w)
        mixed = self.mixed(keys_p)
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            out[:, :, r0:r1] = self.rows(keys_p, r0, r1, feat_p, mixed)
        return out

    def _residual_taps(self, res: torch.Tensor, pos: torch.Tensor, h: int, w: int):
        """The convolution of sparse input rows ``res`` (N, Cin) sitting at padded positions ``pos``
        (N, 2), in chunks: (flat output pixel, contribution (O,), inside) for every tap, where taps
        that fall outside the (h, w) output have a zero contribution and pixel 0 (``inside`` False).
        A residual row has a few non-zero entries (the classes of a pooling window and the edge
        share), so each row's taps are one weighted bag of weight rows, not a dense product."""
        dy = torch.arange(self.kh, device=res.device).repeat_interleave(self.kw)
        dx = torch.arange(self.kw, device=res.device).repeat(self.kh)
        for i in range(0, res.shape[0], RESIDUAL_CHUNK):
            r, p = res[i:i + RESIDUAL_CHUNK], pos[i:i + RESIDUAL_CHUNK]
            row, col = r.nonzero().unbind(1)
            starts = torch.bincount(row, minlength=r.shape[0]).cumsum(0)
            starts = torch.cat([starts.new_zeros(1), starts[:-1]])
            contrib = F.embedding_bag(col, self.w_res, starts, mode="sum",
                                      per_sample_weights=r[row, col]).view(-1, self.o)   # (n * taps, O)
            oy = (p[:, :1] - dy).reshape(-1)
            ox = (p[:, 1:] - dx).reshape(-1)
            ok = (oy >= 0) & (oy < h) & (ox >= 0) & (ox < w)
            contrib.mul_(ok[:, None])
            yield torch.where(ok, oy * w + ox, 0), contrib, ok

    def add_residual(self, out: torch.Tensor, res: torch.Tensor, pos: torch.Tensor) -> None:
        """Add the residual's convolution (:meth:`_residual_taps`) to ``out`` (1, O, H, W), channels_last."""
        _, o, h, w = out.shape
        flat = out.permute(0, 2, 3, 1).reshape(-1, o)                     # a view: channels_last storage
        for pix, contrib, _ok in self._residual_taps(res, pos, h, w):
            flat.index_add_(0, pix, contrib)

    def add_residual_rows(self, rows: torch.Tensor, where: torch.Tensor, hw: tuple[int, int],
                          res: torch.Tensor, pos: torch.Tensor) -> None:
        """:meth:`add_residual` into compact output rows: output pixel ``p`` is ``rows[where[p]]``;
        every pixel a residual reaches must have a row."""
        for pix, contrib, ok in self._residual_taps(res, pos, *hw):
            tgt = where[pix]
            if bool(((tgt < 0) & ok).any()):
                raise RuntimeError("a residual reaches a pixel with no row")
            rows.index_add_(0, tgt.clamp_min_(0), contrib)


class FastPix2PixHD(nn.Module):
    """Drop-in inference replacement for a pix2pixHD GlobalGenerator or LocalEnhancer (one enhancer)."""

    def __init__(self, ref: nn.Module, n_onehot: int, instance_edge: bool = True):
        super().__init__()
        if isinstance(ref, LocalEnhancer) and ref.cfg.n_local_enhancers != 1:
            raise ValueError("the fast path covers one local enhancer (every released pix2pixHD model)")
        self.ref = ref
        self.cfg = ref.cfg
        self.k = n_onehot
        self.edge = instance_edge
        self.local = isinstance(ref, LocalEnhancer)
        g = list(ref.model)
        nd = self.cfg.n_downsample_global
        self.g_down = [g[4 + 3 * i] for i in range(nd)]
        self.g_blocks = [m for m in g if isinstance(m, ResnetBlock)]
        i = 4 + 3 * nd + len(self.g_blocks)
        self.g_up = [g[i + 3 * j] for j in range(nd)]
        if self.local:
            d, u = ref.model1_1, ref.model1_2
            self.l_down = d[4]
            self.l_blocks = [m for m in u if isinstance(m, ResnetBlock)]
            self.l_up = u[len(self.l_blocks)]
            self.out_conv = u[len(self.l_blocks) + 4]
        else:
            self.out_conv = g[-2]
        self._derive()
        self.eval()

    def _derive(self) -> None:
        """Look-up tables and padded filters, from the reference's weights where they now live."""
        first = self.ref.model[1]
        self.g_first = _KeyConv(first.weight, first.bias, self.k, self.edge)
        if self.local:
            c = self.ref.model1_1[1]
            self.l_first = _KeyConv(c.weight, c.bias, self.k, self.edge)
        # the last convolution's 3 output channels padded with zero filters to 8: oneDNN's kernels
        # vectorise over output channels, and 8 run faster than 3
        w, b = self.out_conv.weight, self.out_conv.bias
        pad = -w.shape[0] % 8
        self.out_w = _cl(F.pad(w, (0, 0, 0, 0, 0, 0, 0, pad)))
        self.out_b = None if b is None else F.pad(b, (0, pad))
        # ... and as a space-to-depth convolution (2x2 pixel blocks): 4x the channels on a quarter of
        # the pixels, which oneDNN runs faster than 3 (or 8) filters on full resolution
        self.out_s2d = _space_to_depth_weights(w, b)
        # the local residual blocks' convolutions by Winograd on wide maps (1.2x at 64 channels;
        # their transformed weights are 4x the size of the originals, a few MB in all)
        self.l_wide = {}
        if self.local and self.cfg.ngf * 2 >= WIDE_WINO_MIN_CHANNELS:
            for blk in self.l_blocks:
                for conv in (blk.conv_block[1], blk.conv_block[5]):
                    self.l_wide[id(conv)] = transform_weights(conv.weight.detach())
        trim_heap()

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)          # moves the reference's parameters
        self._derive()
        return self

    # -- inputs --------------------------------------------------------------------------------------
    def split_input(self, x: torch.Tensor):
        """(keys, features) from the reference's input, or None when the class channels are not one-hot."""
        from ..labels.maps import keys_from_semantics

        keys = keys_from_semantics(x, self.k, self.edge)
        if keys is None:
            return None
        rest = self.k + (1 if self.edge else 0)
        feat = x[:, rest:] if x.shape[1] > rest else None
        return keys, feat

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = self.split_input(x)
        if split is None:
            return self.ref(x)
        keys, feat = split
        return torch.cat([self.forward_labels(keys[i:i + 1], None if feat is None else feat[i:i + 1])
                          for i in range(x.shape[0])])

    @torch.inference_mode()
    def forward_labels(self, keys: torch.Tensor, feat: torch.Tensor | None = None) -> torch.Tensor:
        """``keys``: (1, H, W) long, class * 2 + edge bit (or class when the model has no edge channel);
        ``feat``: (1, F, H, W) dense feature channels or None. Returns (1, 3, H, W) in [-1, 1]."""
        keys = keys[0].to(torch.int32)
        trim_heap()
        if self.local:
            return self._local(keys, feat)
        kp = keys[_reflect_index(-3, keys.shape[0] + 3, keys.shape[0], keys.device)][
            :, _reflect_index(-3, keys.shape[1] + 3, keys.shape[1], keys.device)]
        fp = None if feat is None else F.pad(feat, (3, 3, 3, 3), mode="reflect")
        held = [_in_relu_(self.g_first.conv_into(kp, fp))]
        trim_heap()
        x = self._trunk(held)
        trim_heap()
        held = [x]
        del x
        out = self._final_strips(held, None)
        trim_heap()
        return out

    # -- the global generator ------------------------------------------------------------------------
    def _trunk(self, held: list, start: int = 0) -> torch.Tensor:
        """From the first conv's normalised output (or that of downsampling ``start``-1) to the last
        upsampling (normalised, ReLU). The input comes in a list that is emptied, so it is freed as
        soon as it has been read."""
        x = held.pop()
        for conv in self.g_down[start:]:
            x = _in_relu_(_conv_s2_strips(x, conv.weight, conv.bias))
        ws = Workspace()                   # the residual blocks' convolutions share scratch buffers
        for blk in self.g_blocks:
            c1, c2 = blk.conv_block[1], blk.conv_block[5]
            y = _in_relu_(self._conv3_reflect(x, c1, ws))
            y = _in_relu_(self._conv3_reflect(y, c2, ws), relu=False)
            x = y.add_(x)
        del ws
        for conv in self.g_up:
            x = _conv_transpose_strips(x, conv.weight, conv.bias)
            x = _in_relu_(_cl(x))
        return x

    @staticmethod
    def _conv3_reflect(x: torch.Tensor, conv: nn.Conv2d, ws: Workspace | None = None) -> torch.Tensor:
        xp = _cl(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        if x.shape[1] >= 256 and x.shape[2] * x.shape[3] <= 16384:
            return winograd_conv3x3(xp, conv.weight, conv.bias, ws)
        return F.conv2d(_cl(xp), conv.weight, conv.bias)

    def _global_input(self, keys: torch.Tensor, feat: torch.Tensor | None):
        """The global net's first convolution on AvgPool2d(3, 2, 1, count_include_pad=False) of the
        one-hot input, without building that input: centre keys + a sparse residual."""
        h, w = keys.shape
        k = self.k
        lab = keys // 2 if self.edge else keys
        hd, wd = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        centre = lab[::2, ::2]
        lf = lab[None, None].float()
        mx = F.max_pool2d(lf, 3, 2, 1)[0, 0]
        mn = -F.max_pool2d(-lf, 3, 2, 1)[0, 0]
        mixed = mx != mn
        edge_avg = None
        if self.edge:
            e = (keys % 2).float()[None, None]
            edge_avg = F.avg_pool2d(e, 3, 2, 1, count_include_pad=False)[0, 0]
            mixed = mixed | (edge_avg != 0)
        pix = mixed.reshape(-1).nonzero()[:, 0]
        if pix.numel() > SPARSE_MAX_FRACTION * hd * wd:
            return None
        # residual rows: window class histogram / count - onehot(centre) [, edge average]
        py, px = pix // wd, pix % wd
        cin = k + (1 if self.edge else 0)
        res = torch.zeros(pix.numel(), cin, dtype=torch.float32, device=keys.device)
        cnt = torch.zeros(pix.numel(), dtype=torch.float32, device=keys.device)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = 2 * py + dy, 2 * px + dx
                ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                src = lab[yy.clamp(0, h - 1), xx.clamp(0, w - 1)]
                res[torch.arange(pix.numel(), device=keys.device)[ok], src[ok]] += 1.0
                cnt += ok.float()
        res[:, :k] /= cnt[:, None]
        res[torch.arange(pix.numel(), device=keys.device), centre.reshape(-1)[pix]] -= 1.0
        if self.edge:
            res[:, k] = edge_avg.reshape(-1)[pix]
        keys_d = centre * 2 if self.edge else centre          # edge bit lives in the residual
        fd = None if feat is None else F.avg_pool2d(feat, 3, 2, 1, count_include_pad=False)
        return keys_d, (hd, wd), pix, res, fd

    def _global_first(self, keys: torch.Tensor, feat: torch.Tensor | None, gi) -> torch.Tensor:
        """The global net's first convolution, dense; ``gi``: :meth:`_global_input`'s answer."""
        conv = self.g_first
        if gi is None:       # too many mixed windows: build the pooled input densely
            x = self._dense_input(keys, feat)
            x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            first = self.ref.model[1]
            return _cl(F.conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), first.weight, first.bias))
        keys_d, (hd, wd), pix, res, fd = gi
        kp, res_rows, pos = self._global_residual(keys_d, pix, res)
        fp = None if fd is None else F.pad(fd, (3, 3, 3, 3), mode="reflect")
        out = conv.conv_into(kp, fp)
        conv.add_residual(out, res_rows, pos)
        return out

    @staticmethod
    def _global_residual(keys_d: torch.Tensor, pix: torch.Tensor, res: torch.Tensor):
        """The reflect-padded keys of the pooled input, and its residual rows at every padded position
        whose source pixel carries one."""
        hd, wd = keys_d.shape
        ry = _reflect_index(-3, hd + 3, hd, keys_d.device)
        rx = _reflect_index(-3, wd + 3, wd, keys_d.device)
        kp = keys_d[ry][:, rx]
        rid = torch.full((hd * wd,), -1, dtype=torch.long, device=keys_d.device)
        rid[pix] = torch.arange(pix.numel(), device=keys_d.device)
        rid_p = rid.view(hd, wd)[ry][:, rx]
        pos = (rid_p >= 0).nonzero()
        return kp, res[rid_p[pos[:, 0], pos[:, 1]]], pos

    def _global_down_sparse(self, gi) -> torch.Tensor | None:
        """relu(IN(down1(relu(IN(first(pooled input)))))) from per-key tables and the pixels near
        label boundaries (see :meth:`_sparse_first_down`): no first-convolution map at all. None when
        too many outputs are mixed (or there are dense feature channels)."""
        keys_d, (hd, wd), pix, res, fd = gi
        if fd is not None:
            return None
        conv, down = self.g_first, self.g_down[0]
        kp, res_rows, pos = self._global_residual(keys_d, pix, res)
        reached = torch.zeros(1, 1, hd + 6, wd + 6, device=keys_d.device)
        reached[0, 0, pos[:, 0], pos[:, 1]] = 1.0
        reached = _window_reduce(_window_reduce(reached[0, 0], 7, 1, torch.maximum), 7, 0, torch.maximum) > 0
        # (7x7 windows holding a residual)
        mixed1 = (conv.mixed(kp) | reached).reshape(-1)
        del reached
        ho, wo = (hd - 1) // 2 + 1, (wd - 1) // 2 + 1
        got = self._sparse_first_down(conv, keys_d, kp, mixed1, (res_rows, pos), down, (ho, wo))
        if got is None:
            return None
        key2, rows = got
        out = torch.empty(1, rows.shape[1], ho, wo, dtype=rows.dtype, device=keys_d.device,
                          memory_format=torch.channels_last)
        of = _pixels(out)
        for i in range(0, of.shape[0], STRIP_PIXELS):
            of[i:i + STRIP_PIXELS] = F.embedding(key2[i:i + STRIP_PIXELS], rows)
        return out

    def _dense_input(self, keys: torch.Tensor, feat: torch.Tensor | None) -> torch.Tensor:
        k = self.k
        lab = keys // 2 if self.edge else keys
        x = torch.zeros(1, k, *keys.shape, device=keys.device)
        x.scatter_(1, lab[None, None].long(), 1.0)
        parts = [x]
        if self.edge:
            parts.append((keys % 2).float()[None, None])
        if feat is not None:
            parts.append(feat)
        return torch.cat(parts, 1)

    # -- the local enhancer --------------------------------------------------------------------------
    def _local(self, keys: torch.Tensor, feat: torch.Tensor | None) -> torch.Tensor:
        gi = self._global_input(keys, feat)
        x1 = None if gi is None else self._global_down_sparse(gi)
        if x1 is not None:               # the first downsampling's output, from tables
            held, start = [x1], 1
        else:
            held, start = [_in_relu_(self._global_first(keys, feat, gi))], 0
        del x1, gi
        g = self._trunk(held, start)     # (1, 2ngf, H/2, W/2)
        trim_heap()
        hh, ww = keys.shape
        if (g.shape[2], g.shape[3]) != ((hh - 1) // 2 + 1, (ww - 1) // 2 + 1):
            raise ValueError(f"label map {tuple(keys.shape[::-1])} must have even width and height")
        if feat is None and self._local_down_sparse_(keys, g):
            h = g                        # g += relu(IN(local down path)), computed piecewise
        else:
            h = self._local_down(keys, feat)
            _in_relu_(h).add_(g)
        del g
        trim_heap()                      # the peak is next: what the stages so far freed leaves
        y = torch.empty_like(h)          # one scratch map for every block (fresh pages cost time)
        for blk in self.l_blocks:
            self._resblock_(h, blk, y)
        trim_heap()                      # and before the last stage's
        held = [h, y]                   # both are overwritten, then freed, by the final stage
        del h, y
        out = self._final_strips(held, self.l_up)
        trim_heap()
        return out

    def _local_down_sparse_(self, keys: torch.Tensor, g: torch.Tensor) -> bool:
        """``g += relu(IN(down(relu(IN(conv7(onehot))))))`` without a full-resolution map or a second
        half-resolution one (see :meth:`_sparse_first_down`). False (nothing done) when too many
        outputs are mixed for this to pay; the dense path runs then."""
        hh, ww = keys.shape
        dev = keys.device
        kp = keys[_reflect_index(-3, hh + 3, hh, dev)][:, _reflect_index(-3, ww + 3, ww, dev)]
        got = self._sparse_first_down(self.l_first, keys, kp, self.l_first.mixed(kp).reshape(-1), None,
                                      self.l_down, (g.shape[2], g.shape[3]))
        if got is None:
            return False
        key2, rows = got
        gf = _pixels(g)
        if gf.data_ptr() != g.data_ptr():
            raise RuntimeError("the global output must be channels_last")
        for i in range(0, gf.shape[0], STRIP_PIXELS):
            gf[i:i + STRIP_PIXELS] += F.embedding(key2[i:i + STRIP_PIXELS], rows)
        return True

    @staticmethod
    def _sparse_first_down(conv: _KeyConv, keys: torch.Tensor, kp: torch.Tensor, mixed1: torch.Tensor,
                           residual, down: nn.Conv2d, out_hw: tuple[int, int]):
        """relu(IN(down(relu(IN(first(onehot)))))) as a per-key table plus the rows of its mixed outputs.

        Where a pixel's 7x7 window holds one key (and no residual input) the first convolution is that
        key's constant; where the stride-2 convolution's 3x3 window reads one such key (inside the
        image) it is a constant too. Both maps are thus a per-key table plus the values of the few mixed
        pixels, and instance-norm statistics come from key counts. ``mixed1``: the flat mixed mask of
        the first convolution's output; ``residual``: None or (rows, padded positions) of a sparse
        input residual whose contributions land on mixed pixels only. Returns (keys of the output,
        pure keys then ``nk + i`` for mixed output i; its rows), or None when too many are mixed."""
        hh, ww = keys.shape
        ho, wo = out_hw
        dev = keys.device
        # the stride-2 outputs whose 3x3 window (zero padding: outside is mixed) reads one pure key
        code = torch.where(mixed1, -1, keys.reshape(-1)).view(1, 1, hh, ww).float()
        code = F.pad(code, (1, 1, 1, 1), value=-1.0)
        mn = -F.max_pool2d(-code, 3, stride=2)[0, 0].reshape(-1)
        pure2 = F.max_pool2d(code, 3, stride=2)[0, 0].reshape(-1) == mn
        pure2 &= mn >= 0
        del code
        pix2 = (~pure2).nonzero()[:, 0]
        if pix2.numel() > SPARSE_DOWN_MAX_FRACTION * ho * wo:
            return None
        nk = conv.nkeys
        # level 1: per-key table + mixed pixels, normalised with whole-map statistics
        pix1 = mixed1.nonzero()[:, 0]
        b1 = 0.0 if conv.b is None else conv.b
        t1 = conv.tsum + b1
        v1 = conv.at(kp, pix1).add_(b1)
        if residual is not None:
            where = torch.full((hh * ww,), -1, dtype=torch.int64, device=dev)
            where[pix1] = torch.arange(pix1.numel(), device=dev)
            conv.add_residual_rows(v1, where, (hh, ww), *residual)
            del where
        cnt1 = torch.bincount(keys.reshape(-1)[~mixed1].long(), minlength=nk)
        scale, shift = _table_stats(t1, cnt1, v1, hh * ww)
        t1 = (t1 * scale + shift).relu_()
        v1 = v1.mul_(scale).add_(shift).relu_()
        del cnt1
        # level 2: the stride-2 convolution; pure outputs from the table, mixed ones by one product
        w2, b2 = down.weight, down.bias
        t2 = t1 @ w2.sum((2, 3)).T
        if b2 is not None:
            t2 += b2
        rows = torch.cat([t1, v1, t1.new_zeros(1, t1.shape[1])])     # pure keys | mixed pixels | zero pad
        del t1, v1
        src = keys.to(torch.int64).reshape(-1).clone()
        src[pix1] = nk + torch.arange(pix1.numel(), device=dev)
        src = F.pad(src.view(1, 1, hh, ww), (1, 1, 1, 1), value=rows.shape[0] - 1)[0, 0].reshape(-1)
        del pix1
        wp = ww + 2
        off = (torch.arange(3, device=dev)[:, None] * wp + torch.arange(3, device=dev)).view(1, -1)
        w2r = w2.permute(2, 3, 1, 0).reshape(-1, w2.shape[0])           # (tap, cin) x cout
        v2 = torch.empty(pix2.numel(), w2.shape[0], dtype=rows.dtype, device=dev)
        for i in range(0, pix2.numel(), BAG_CHUNK // 4):
            p = pix2[i:i + BAG_CHUNK // 4]
            base = (p // wo) * 2 * wp + (p % wo) * 2
            v = F.embedding(src[base[:, None] + off], rows).reshape(p.numel(), -1)
            torch.mm(v, w2r, out=v2[i:i + p.numel()])
        if b2 is not None:
            v2 += b2
        del src, rows
        key2 = mn.to(torch.int64)
        del mn
        cnt2 = torch.bincount(key2[pure2], minlength=nk)
        scale, shift = _table_stats(t2, cnt2, v2, ho * wo)
        rows = torch.cat([(t2 * scale + shift).relu_(), v2.mul_(scale).add_(shift).relu_()])
        del t2, v2
        key2[pix2] = nk + torch.arange(pix2.numel(), device=dev)
        return key2, rows

    def _local_down(self, keys: torch.Tensor, feat: torch.Tensor | None) -> torch.Tensor:
        """relu(IN(conv7(onehot))) -> stride-2 conv, streamed in full-resolution strips (two passes)."""
        hh, ww = keys.shape
        ry = _reflect_index(-3, hh + 3, hh, keys.device)
        rx = _reflect_index(-3, ww + 3, ww, keys.device)
        kp = keys[ry][:, rx]
        fp = None if feat is None else F.pad(feat, (3, 3, 3, 3), mode="reflect")
        conv = self.l_first
        step = _strip_rows(ww) // 2 * 2
        st = _Stats(conv.o, keys.device)
        mixed = conv.mixed(kp)
        for r0 in range(0, hh, step):
            st.add(conv.rows(kp, r0, min(hh, r0 + step), fp, mixed))
        scale, shift = st.scale_shift(torch.float32)
        down = self.l_down
        ho, wo = (hh - 1) // 2 + 1, (ww - 1) // 2 + 1
        out = torch.empty(1, down.weight.shape[0], ho, wo, device=keys.device, memory_format=torch.channels_last)
        for q0 in range(0, ho, step // 2):
            q1 = min(ho, q0 + step // 2)
            a, b = max(0, 2 * q0 - 1), min(hh, 2 * q1)                     # full-res rows read
            s = _norm_(conv.rows(kp, a, b, fp, mixed).contiguous(memory_format=torch.channels_last), scale, shift)
            s = F.pad(s, (1, 1, 1 if q0 == 0 else 0, max(0, 2 * q1 - hh)))
            out[:, :, q0:q1] = F.conv2d(s, down.weight, down.bias, stride=2)
        return out

    def _conv3_rows(self, x: torch.Tensor, conv: nn.Conv2d, r0: int, r1: int, norm=None) -> torch.Tensor:
        """Rows r0..r1-1 of conv3x3(reflect_pad1(x)); the padded strip is built with one copy. With
        ``norm`` (scale, shift), of conv3x3(reflect_pad1(relu(x * scale + shift))), applied to that copy
        (reflection commutes with it)."""
        s = _padded_strip(x, 0, r0, r1, x.shape[2], 1)
        if norm is not None:
            _norm_(s, *norm)
        u = self.l_wide.get(id(conv))
        if u is not None and s.dtype == u.dtype and s.device == u.device:
            return winograd_conv3x3_wide(s, u, conv.bias)
        return F.conv2d(s, conv.weight, conv.bias)

    def _resblock_(self, x: torch.Tensor, blk: ResnetBlock, y: torch.Tensor | None = None) -> None:
        """x += IN(conv(relu(IN(conv(x))))) with one extra buffer ``y`` (scratch, x's shape and layout).

        Each map is read and written as few times as the statistics allow: the first convolution's
        statistics are gathered strip by strip while its output is in cache, and its normalisation and
        ReLU are applied to the second convolution's padded input strips (a copy made anyway), not to
        ``y``; the second convolution overwrites ``y`` one strip behind its reads; the residual sum
        runs a chunk of pixel rows at a time."""
        c1, c2 = blk.conv_block[1], blk.conv_block[5]
        hh, ww = x.shape[2], x.shape[3]
        step = max(2, RES_STRIP_PIXELS // max(ww, 1))
        y = torch.empty_like(x) if y is None else y
        st = _Stats(y.shape[1], x.device)
        for r0 in range(0, hh, step):
            r1 = min(hh, r0 + step)
            z = self._conv3_rows(x, c1, r0, r1)
            st.add(z)
            y[:, :, r0:r1] = z
        scale, shift = st.scale_shift(y.dtype)
        st = _Stats(y.shape[1], x.device)
        pending = None
        for r0 in range(0, hh, step):
            r1 = min(hh, r0 + step)
            z = self._conv3_rows(y, c2, r0, r1, (scale, shift))
            st.add(z)
            if pending is not None:
                y[:, :, pending[0]:pending[1]] = pending[2]
            pending = (r0, r1, z)
        y[:, :, pending[0]:pending[1]] = pending[2]
        del pending, z
        scale, shift = st.scale_shift(y.dtype)
        cl = torch.channels_last
        if not (x.is_contiguous(memory_format=cl) and y.is_contiguous(memory_format=cl)):
            x.add_(_norm_(y, scale, shift, relu=False))      # no pixel-row views to chunk
            return
        xp, yp = _pixels(x), _pixels(y)
        sc, sh = scale.view(1, -1), shift.view(1, -1)
        rows = max(1, MOMENT_CHUNK // max(1, xp.shape[1]))
        for i in range(0, xp.shape[0], rows):
            xp[i:i + rows].addcmul_(yp[i:i + rows], sc).add_(sh)

    def _final_strips(self, held: list, up: nn.ConvTranspose2d | None) -> torch.Tensor:
        """[convT -> IN -> ReLU ->] reflect pad 3 -> conv7 -> tanh, in strips of output rows.

        ``held``: [x] or [x, spare], emptied here (the caller keeps no other reference, so both are
        freed as soon as they are no longer read). With ``spare`` (a scratch map of x's shape and
        layout) the transposed convolution's output is computed once and kept in the bytes of
        ``spare`` (top half) and of ``x`` (bottom half; :func:`_conv_transpose_in_place`), and the
        image is written into the rows of ``spare`` already read where they suffice. Otherwise the
        transposed convolution is computed twice, strip by strip (statistics, then output)."""
        x = held.pop(0)
        spare = held.pop(0) if held else None
        conv = self.out_conv
        nout = conv.weight.shape[0]
        step = FINAL_STRIP_ROWS        # each strip recomputes 3 rows either side: tall strips waste less
        post = dst = halves = None
        if up is None:
            hh, ww = x.shape[2], x.shape[3]

            def rows(a, b):
                return x[:, :, a:b]
        else:
            hh, ww = 2 * x.shape[2], 2 * x.shape[3]
            halves = None if spare is None else _conv_transpose_in_place(x, spare, up.weight, up.bias)
            if halves is not None:
                st = halves[1]
                m = x.shape[2]                      # output rows per half

                def rows(a, b):
                    top, bot = halves[0]
                    if b <= m:
                        return top[:, :, a:b]
                    if a >= m:
                        return bot[:, :, a - m:b - m]
                    return torch.cat([top[:, :, a:], bot[:, :, :b - m]], 2)
                dst = _image_in_read_rows(spare, up.weight.shape[1], m, hh, ww, nout, step)
            else:
                def raw(a, b):
                    return _conv_transpose_rows(x, up.weight, up.bias, a, b)

                st = _Stats(up.weight.shape[1], x.device)
                for r0 in range(0, hh, step):
                    st.add(raw(r0, min(hh, r0 + step)))

                def rows(a, b):
                    a2 = a - (a % 2)
                    return raw(a2, b)[:, :, a - a2:]
            post = st.scale_shift(x.dtype)
        spare = None
        out = torch.empty(1, nout, hh, ww, device=x.device) if dst is None else dst
        for r0 in range(0, hh, step):
            r1 = min(hh, r0 + step)
            a, b = max(0, r0 - 3), min(hh, r1 + 3)
            s = _padded_strip(rows(a, b), a, r0, r1, hh, 3)
            if post is not None:       # normalise the strip's copy (reflection commutes with it)
                _norm_(s, *post)
            if (r1 - r0) % 2 == 0 and ww % 2 == 0 and self.out_s2d is not None:
                _conv_s2d_into(out[:, :, r0:r1], s, *self.out_s2d)
            else:
                out[:, :, r0:r1] = F.conv2d(s, self.out_w, self.out_b)[:, :nout]
            del s
        del rows
        x = halves = None              # the bottom half's bytes go now; the image moves out of the top's
        if dst is not None:
            out = out.contiguous()
        return out.tanh_()


def _image_in_read_rows(spare: torch.Tensor, c: int, m: int, hh: int, ww: int, nout: int, step: int):
    """A (1, nout, hh, ww) pixel-interleaved view at the start of ``spare``'s bytes, which hold the
    top ``m`` rows (``c`` channels, ``ww`` wide) of the map the final strips read, or None where the
    image written up to a strip's last row would reach rows that a later strip still reads (its
    first row less the 3 padding rows) or would not fit."""
    if spare.numel() < nout * hh * ww or not spare.is_contiguous(memory_format=torch.channels_last):
        return None
    for r0 in range(0, hh, step):
        r1 = min(hh, r0 + step)
        free_rows = m if r1 >= hh else max(0, min(r1 - 3, m))
        if r1 * nout > free_rows * c:
            return None
    flat = _pixels(spare).reshape(-1)
    return flat[:nout * hh * ww].view(1, hh, ww, nout).permute(0, 3, 1, 2)


def _space_to_depth_weights(w: torch.Tensor, b: torch.Tensor | None, co_pad: int = 4):
    """A (Co, Ci, k, k) 'valid' convolution (k odd) as one on 2x2 pixel blocks: input channels
    (ry, rx, ci), output channels (py, px, co padded to ``co_pad``), kernel (k + 1) / 2 blocks square.
    Output pixel (2Y + py, 2X + px) reads input (2(Y + q) + r) for tap 2q + r - p. None where it does
    not apply (even kernels, more output channels than ``co_pad``)."""
    co, ci, k, k2 = w.shape
    if k != k2 or k % 2 == 0 or co > co_pad:
        return None
    q = (k + 1) // 2
    w2 = w.new_zeros(2, 2, co_pad, 2, 2, ci, q, q)
    for py in range(2):
        for px in range(2):
            for ry in range(2):
                for rx in range(2):
                    for qy in range(q):
                        dy = 2 * qy + ry - py
                        if not 0 <= dy < k:
                            continue
                        for qx in range(q):
                            dx = 2 * qx + rx - px
                            if 0 <= dx < k:
                                w2[py, px, :co, ry, rx, :, qy, qx] = w[:, :, dy, dx]
    b2 = None if b is None else F.pad(b, (0, co_pad - co)).repeat(4)
    return _cl(w2.reshape(4 * co_pad, 4 * ci, q, q)), b2, co, co_pad


def _conv_s2d_into(dst: torch.Tensor, s: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor | None,
                   co: int, co_pad: int) -> None:
    """``dst`` (1, co, R, W) = the 'valid' convolution of the padded strip ``s`` (1, Ci, R + k - 1,
    W + k - 1), R and W even, computed on 2x2 pixel blocks (:func:`_space_to_depth_weights`)."""
    _, ci, hs, wsd = s.shape
    r, w = dst.shape[2], dst.shape[3]
    x = _pixels(s).view(hs // 2, 2, wsd // 2, 2, ci).permute(0, 2, 1, 3, 4).reshape(1, hs // 2, wsd // 2, 4 * ci)
    y = F.conv2d(x.permute(0, 3, 1, 2), w2, b2)                         # (1, 4 co_pad, R/2, W/2)
    y = _pixels(y).view(r // 2, w // 2, 2, 2, co_pad)[..., :co]        # (Y, X, py, px, co)
    dst[0].view(co, r // 2, 2, w // 2, 2).copy_(y.permute(4, 0, 2, 1, 3))


def _conv_transpose_in_place(x: torch.Tensor, spare: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
    """ConvTranspose2d(k=3, s=2, p=1, output_padding=1) of ``x`` (1, Cin, H, W) into the bytes of
    ``spare`` and ``x``, with per-channel statistics: ((top, bottom) channels_last views, _Stats).

    With Cin = 2 Cout one output row holds as many numbers as one input row, so output rows 0..H-1 fit
    ``spare`` and rows H..2H-1 fit ``x``. The top half reads input rows 0..H/2 only; the bottom half,
    computed strip by strip in order, writes input row i (as output row H+i) only after every strip
    that reads it: a strip of output rows r0..r1-1 reads input rows from r0/2 on, and later strips
    from r1/2 > r1 - H on. None (nothing written) where the shapes do not allow it."""
    _, cin, h, wd = x.shape
    cout = w.shape[1]
    if (cin != 2 * cout or h % 2 or spare.shape != x.shape
            or not x.is_contiguous(memory_format=torch.channels_last)
            or not spare.is_contiguous(memory_format=torch.channels_last)):
        return None

    def as_out(t):                      # (1, Cin, H, W) channels_last bytes as (1, Cout, H, 2W)
        return _pixels(t).view(1, h, 2 * wd, cout).permute(0, 3, 1, 2)

    top, bot = as_out(spare), as_out(x)
    st = _Stats(cout, x.device)
    step = FINAL_STRIP_ROWS
    for half, lo in ((top, 0), (bot, h)):            # strips never straddle the halves
        for r0 in range(lo, lo + h, step):
            r1 = min(lo + h, r0 + step)
            z = _conv_transpose_rows(x, w, b, r0, r1)
            st.add(z)
            half[:, :, r0 - lo:r1 - lo] = z
    return (top, bot), st


def fast_pix2pixhd(ref: nn.Module, n_onehot: int, instance_edge: bool = True) -> FastPix2PixHD | None:
    """The fast path for a loaded generator, or None where it does not apply."""
    if not isinstance(ref, (GlobalGenerator, LocalEnhancer)):
        return None
    if isinstance(ref, LocalEnhancer) and ref.cfg.n_local_enhancers != 1:
        return None
    if ref.cfg.input_nc < n_onehot + (1 if instance_edge else 0):
        return None
    return FastPix2PixHD(ref, n_onehot, instance_edge)

"""Fast inference path for SPADE generators: the same weights and the same function as the reference
(:class:`engine.models.spade.SPADEGenerator` in eval mode), computed with far fewer operations.

The input is a label map, as keys (class, or ``2 * class + instance-edge bit``), never the one-hot
tensor: :meth:`FastSPADEGenerator.forward_labels`. ``forward(seg)`` accepts the reference's one-hot
input, reads the keys off it, and hands anything that is not exactly one-hot to the reference.

- Spectral norm is folded once into plain weights (``weight_orig / (u . W v)`` with the stored u, v).
- Every weight is held once: the reference's convolutions become views of the fast path's layouts
  (or the reverse), so a loaded model costs its weight size and no more. Nothing per class is stored:
  the per-key constants below are computed per call for the keys present in the map.
- A SPADE's hidden activation ``relu(conv3x3(one-hot))`` is a sum of nine table look-ups (plus nine
  for the instance-edge bit), and its gamma and beta at a pixel depend only on the keys in the pixel's
  5x5 neighbourhood. Where that neighbourhood holds one key (and the pixel is 2 px inside the image)
  they are a per-key constant; only pixels near label boundaries run the gamma|beta convolution, as
  one matrix product on look-up-built hidden activations at just the positions those pixels read.
  With 1x1 SPADEs (``spade_ks`` 1) gamma and beta are a function of the pixel's own key: look-ups only.
- The parameter-free norm and the modulation are one pass: ``(x - mean) * (s * G[key]) + B[key]``,
  with the leaky ReLU that follows it applied in the same chunk, in bounded memory.
- 3x3 convolutions on small maps (the 1024-channel head and middle blocks) are one GEMM on an im2col
  matrix; oneDNN re-lays the weights out on every call there, which costs more than the product.
  Wide ones on mid-size maps use Winograd F(4x4, 3x3), weights transformed on the fly.
- channels_last memory format throughout.

The reference stays the op-for-op official computation that the test vectors check (``--reference``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..devices import trim_heap
from .pix2pixhd_fast import winograd_conv3x3
from .spade import SPADEGenerator

MOD_CHUNK_ELEMS = 1 << 18       # activations per modulation chunk (1 MB)
GEMM_MAX_PIXELS = 1024          # main 3x3 convolutions on at most this many pixels run as one GEMM
WINOGRAD_MIN_CHANNELS = 256     # ... above that, with this many channels in and out and at most
WINOGRAD_MAX_PIXELS = 4096      # this many pixels, Winograd F(4x4, 3x3) (measured on a 2-core AVX2 CPU)


def _plain_weight(conv: nn.Module) -> torch.Tensor:
    """The weight the reference uses in eval: spectral-normalised with the stored vectors."""
    if hasattr(conv, "weight_orig"):
        w = conv.weight_orig.detach()
        u, v = conv.weight_u.detach(), conv.weight_v.detach()
        sigma = torch.dot(u, torch.mv(w.reshape(w.shape[0], -1), v))
        return w / sigma
    return conv.weight.detach()


def _bias(conv: nn.Module) -> torch.Tensor | None:
    b = getattr(conv, "bias", None)
    return None if b is None else b.detach()


def supports_lookup(ref: SPADEGenerator, n_onehot: int | None) -> bool:
    """Whether every SPADE reads one-hot classes [+ one binary edge channel] with 3x3 convolutions, or
    every one with 1x1 convolutions (then gamma and beta are a function of the pixel's key alone)."""
    if not n_onehot:
        return False
    kernels = set()
    for m in ref.modules():
        if hasattr(m, "mlp_shared"):
            w = m.mlp_shared[0].weight
            ks = tuple(w.shape[2:])
            if ks not in ((3, 3), (1, 1)) or tuple(m.mlp_gamma.weight.shape[2:]) != ks \
                    or w.shape[1] - n_onehot not in (0, 1):
                return False
            kernels.add(ks)
    return len(kernels) == 1


def conv3x3(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """3x3 'same' convolution; ``w`` channels_last. Small maps: one GEMM on the im2col matrix."""
    bsz, c, h, wd = x.shape
    if bsz * h * wd > GEMM_MAX_PIXELS:
        if bsz == 1 and min(c, w.shape[0]) >= WINOGRAD_MIN_CHANNELS and h * wd <= WINOGRAD_MAX_PIXELS:
            return winograd_conv3x3(F.pad(x, (1, 1, 1, 1)), w, b)
        return F.conv2d(x, w, b, padding=1)
    o = w.shape[0]
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))                      # (B, H+2, W+2, C)
    cols = xp.unfold(1, 3, 1).unfold(2, 3, 1).permute(0, 1, 2, 4, 5, 3).reshape(bsz * h * wd, 9 * c)
    wm = w.permute(0, 2, 3, 1).reshape(o, 9 * c).t()                           # a view: tap-major, channel-minor
    out = torch.addmm(b, cols, wm) if b is not None else cols @ wm
    return out.view(bsz, h, wd, o).permute(0, 3, 1, 2)


class _Level:
    """What every SPADE at one resolution shares: keys, boundary pixels and the 3x3 key patterns they read.

    A hidden activation ``relu(conv3x3(one-hot))`` depends only on the 3x3 key pattern around its
    position, and along label boundaries few patterns repeat many times. So the hidden activations are
    computed once per distinct pattern, each times the nine gamma|beta taps (one small batched product),
    and a boundary pixel's gamma|beta is the sum of the nine rows its neighbours' patterns pick."""

    Y_BYTES = 4 << 20          # per-tap products held at once; above this the boundary is split

    def __init__(self, keys: torch.Tensor, edge: bool, k: int, cin: int, max_2c: int, ks: int = 3):
        b, h, w = keys.shape
        dev = keys.device
        self.shape = (b, h, w)
        self.present, kc = torch.unique(keys, return_inverse=True)
        kc = kc.view(b, h, w)
        self.kc = kc.reshape(-1)                                                 # compact key per pixel
        self.cls = self.present // 2 if edge else self.present
        self.bit = (self.present % 2).to(torch.float32) if edge else None
        if ks == 1:          # 1x1 SPADEs: every pixel's gamma|beta is its key's; no boundary
            self.bidx = torch.zeros(0, dtype=torch.long, device=dev)
            self.chunks = []
            return
        if h >= 5 and w >= 5:
            kf = kc[:, None].float()
            same = F.max_pool2d(kf, 5, stride=1, padding=2) == -F.max_pool2d(-kf, 5, stride=1, padding=2)
            boundary = ~same[:, 0]
            boundary[:, :2] = True
            boundary[:, -2:] = True
            boundary[:, :, :2] = True
            boundary[:, :, -2:] = True
        else:
            boundary = torch.ones(b, h, w, dtype=torch.bool, device=dev)
        self.bidx = bidx = boundary.reshape(-1).nonzero()[:, 0]
        # positions on the zero-padded grid ((h+2) x (w+2) per image) of a 3x3 'same' convolution
        pw, p = w + 2, (h + 2) * (w + 2)
        kpad = F.pad(kc + 1, (1, 1, 1, 1)).reshape(-1)                         # 0: outside the image
        taps = torch.tensor([(dy - 1) * pw + (dx - 1) for dy in range(3) for dx in range(3)], device=dev)
        bi, r = bidx // (h * w), bidx % (h * w)
        centre = bi * p + (r // w + 1) * pw + (r % w + 1)
        pos, inv = torch.unique(centre[:, None] + taps, return_inverse=True)     # positions read
        nbk = kpad[(pos[:, None] + taps).clamp_(0, kpad.numel() - 1)]           # (Npos, 9) their patterns
        inside = kpad[pos] > 0
        nbk[~inside] = -1                                                        # hidden = 0 there
        base = self.present.numel() + 2
        if base ** 9 < 2 ** 62:
            code = ((nbk + 1) * base ** torch.arange(9, device=dev)).sum(1)
            _, pid = torch.unique(code, return_inverse=True)
            rep = torch.empty(int(pid.max()) + 1, dtype=torch.long, device=dev).scatter_(
                0, pid, torch.arange(pid.numel(), device=dev))
            pats = nbk[rep]
        else:
            pats, pid = torch.unique(nbk, dim=0, return_inverse=True)
        # look-up bags of each pattern: nine class taps (and nine edge taps) into the shared-MLP rows
        zero_row = 9 * cin
        tapbase = torch.arange(9, device=dev) * cin
        kk = pats - 1
        ok = kk >= 0
        kk = kk.clamp(min=0)
        bag = torch.where(ok, tapbase + self.cls[kk], zero_row)
        if edge:
            bag = torch.cat([bag, torch.where(ok & (self.present[kk] % 2 == 1), tapbase + k, zero_row)], 1)
        self.bag, self.inside, self.zero_row = bag, (pats[:, 4] >= 0).to(torch.float32)[:, None], zero_row
        # each boundary pixel's nine (tap, pattern) rows, in chunks that bound the per-tap products
        pp = pid[inv]                                                            # (Nb, 9)
        u = pats.shape[0]
        n_chunks = max(1, -(-9 * u * max_2c * 4 // self.Y_BYTES))
        step = -(-bidx.numel() // n_chunks) if bidx.numel() else 1
        self.chunks = []
        for i in range(0, bidx.numel(), step):
            if n_chunks == 1:
                sub, loc, us = None, pp, u
            else:
                sub, loc = torch.unique(pp[i:i + step], return_inverse=True)
                us = sub.numel()
            # few patterns (boundaries at high resolution): nine per-tap products per pattern, summed by
            # look-up; about as many patterns as pixels (low resolution): one im2col product instead
            taps_way = 2 * us < loc.shape[0]
            self.chunks.append((bidx[i:i + step], sub, loc + torch.arange(9, device=dev) * us if taps_way else loc,
                                taps_way))


class _FastNorm(nn.Module):
    """One SPADE (norm, shared MLP, gamma|beta) over a :class:`_Level`; weights shared with the reference."""

    def __init__(self, spade_mod, n_onehot: int):
        super().__init__()
        pf = spade_mod.param_free_norm
        self.batch = isinstance(pf, nn.BatchNorm2d)
        self.eps = pf.eps
        if self.batch:      # frozen statistics: the reference's own buffers
            self.register_buffer("run_mean", pf.running_mean.detach())
            self.register_buffer("run_var", pf.running_var.detach())
        sh = spade_mod.mlp_shared[0]
        ws = sh.weight.detach()
        nh, cin = ws.shape[:2]
        self.k, self.edge, self.nh = n_onehot, cin == n_onehot + 1, nh
        self.ks = ws.shape[2]
        self.taps = t = self.ks * self.ks
        # shared MLP as look-up rows (tap * cin + channel) and one zero row; the reference reads a view
        table = torch.zeros(t * cin + 1, nh, dtype=ws.dtype, device=ws.device)
        table[: t * cin] = ws.permute(2, 3, 1, 0).reshape(t * cin, nh)
        self.register_buffer("h_table", table)
        self.register_buffer("h_b", sh.bias.detach())
        wg, wb = spade_mod.mlp_gamma.weight.detach(), spade_mod.mlp_beta.weight.detach()
        c = wg.shape[0]
        self.c = c
        self.register_buffer("gb_b", torch.cat([spade_mod.mlp_gamma.bias.detach() + 1.0,       # 1 + gamma
                                                spade_mod.mlp_beta.bias.detach()], 0))
        # gamma|beta once, as im2col rows (tap-major) times this matrix; the reference reads views
        wmat = torch.cat([wg, wb], 0).permute(2, 3, 1, 0).reshape(t * nh, 2 * c).contiguous()
        self.register_buffer("wmat", wmat)
        self._mod = [spade_mod]                # not a submodule: it reads this module's tensors
        self.share()

    def share(self) -> None:
        """Point the reference SPADE's weights at views of this module's tensors (again after a move to
        another device or dtype, which copies buffers and parameters separately)."""
        m = self._mod[0]
        sh = m.mlp_shared[0]
        cin, nh, c, ks = sh.weight.shape[1], self.nh, self.c, self.ks
        sh.weight.data = self.h_table[: self.taps * cin].view(ks, ks, cin, nh).permute(3, 2, 0, 1)
        sh.bias.data = self.h_b
        wv = self.wmat.view(ks, ks, nh, 2 * c).permute(3, 2, 0, 1)
        m.mlp_gamma.weight.data = wv[:c]
        m.mlp_beta.weight.data = wv[c:]
        if self.batch:
            m.param_free_norm.running_mean = self.run_mean
            m.param_free_norm.running_var = self.run_var

    def key_table(self, lv: _Level) -> torch.Tensor:
        """(keys present, 2C): 1 + gamma | beta where a pixel's 5x5 neighbourhood is one key (everywhere
        for 1x1 SPADEs)."""
        cin = self.k + (1 if self.edge else 0)
        tap_sum = self.h_table[: self.taps * cin].view(self.taps, cin, self.nh).sum(0)  # (cin, nh)
        pre = tap_sum[lv.cls] + self.h_b
        if self.edge:
            pre = pre + lv.bit[:, None] * tap_sum[self.k]
        wsum = self.wmat.view(self.taps, self.nh, 2 * self.c).sum(0)
        return torch.addmm(self.gb_b, F.relu(pre), wsum)

    def forward(self, x: torch.Tensor, lv: _Level, act: bool, inplace: bool = False,
                proj: torch.Tensor | None = None) -> torch.Tensor:
        """SPADE(x) [then leaky ReLU]. ``inplace`` writes it over ``x``; ``proj`` (Cout, C) instead returns
        the 1x1 convolution of it, chunk by chunk, so the modulated map never exists whole."""
        c = self.c
        bsz, _, h, w = x.shape
        hw = h * w
        x = x.contiguous(memory_format=torch.channels_last)
        if self.batch:
            mean = self.run_mean.expand(bsz, c)
            scale = torch.rsqrt(self.run_var + self.eps).expand(bsz, c)
        else:
            var, mean = torch.var_mean(x, dim=(2, 3), unbiased=False)
            scale = torch.rsqrt(var + self.eps)
        xf = x.permute(0, 2, 3, 1).reshape(-1, c)
        # pixels near a boundary first (they read x, which an in-place pass overwrites): the full computation
        wt = self.wmat.view(self.taps, self.nh, 2 * c)
        bres = torch.empty(lv.bidx.numel(), c, dtype=x.dtype, device=x.device)
        at = 0
        for bidx, sub, idx, taps_way in lv.chunks:
            bag, ins = (lv.bag, lv.inside) if sub is None else (lv.bag[sub], lv.inside[sub])
            hid = F.embedding_bag(bag, self.h_table, mode="sum", padding_idx=lv.zero_row)
            hid = hid.add_(self.h_b).relu_().mul_(ins)                          # one row per 3x3 pattern
            if taps_way:
                y = torch.matmul(hid, wt).view(-1, 2 * c)                      # (9 * patterns, 2C)
                gb = F.embedding_bag(idx, y, mode="sum").add_(self.gb_b)
            else:
                gb = torch.addmm(self.gb_b, F.embedding(idx, hid).view(idx.shape[0], -1), self.wmat)
            bi = bidx // hw
            nrm = (xf.index_select(0, bidx) - mean[bi]).mul_(scale[bi])
            res = torch.addcmul(gb[:, c:], nrm, gb[:, :c], out=bres[at:at + bidx.numel()])
            if act:
                F.leaky_relu_(res, 0.2)
            at += bidx.numel()
        if proj is not None:
            out = torch.empty(bsz, proj.shape[0], h, w, dtype=x.dtype, device=x.device,
                              memory_format=torch.channels_last)
            pf = out.permute(0, 2, 3, 1).view(-1, proj.shape[0])
        else:
            out = x if inplace else torch.empty_like(x)
        of = out.permute(0, 2, 3, 1).view(-1, out.shape[1])
        if lv.bidx.numel() == xf.shape[0]:          # every pixel near a boundary (small maps): done
            if proj is not None:
                torch.mm(bres, proj.t(), out=pf)
            else:
                of.copy_(bres)
            return out
        # everywhere else one look-up per pixel: (x - mean) * (scale * G[key]) + B[key]
        table = self.key_table(lv)
        step = max(1, MOD_CHUNK_ELEMS // c)
        for bi in range(bsz):
            tb = torch.cat([table[:, :c] * scale[bi], table[:, c:]], 1)
            for i in range(bi * hw, (bi + 1) * hw, step):
                j = min(i + step, (bi + 1) * hw)
                gb = F.embedding(lv.kc[i:j], tb)
                buf = torch.addcmul(gb[:, c:], xf[i:j] - mean[bi], gb[:, :c],
                                    out=None if proj is not None else of[i:j])
                if act:
                    F.leaky_relu_(buf, 0.2)
                a, b = (torch.searchsorted(lv.bidx, torch.tensor([i, j], device=x.device)).tolist()
                        if lv.bidx.numel() else (0, 0))
                if b > a:
                    buf.index_copy_(0, lv.bidx[a:b] - i, bres[a:b])
                if proj is not None:
                    torch.mm(buf, proj.t(), out=pf[i:j])
        return out


class _FastBlock(nn.Module):
    def __init__(self, blk, n_onehot: int):
        super().__init__()
        self.learned_shortcut = blk.learned_shortcut
        for n in ("norm_0", "norm_1") + (("norm_s",) if blk.learned_shortcut else ()):
            setattr(self, n, _FastNorm(getattr(blk, n), n_onehot))
        for n in ("conv_0", "conv_1") + (("conv_s",) if blk.learned_shortcut else ()):
            conv = getattr(blk, n)
            w = _plain_weight(conv).contiguous(memory_format=torch.channels_last)
            self.register_buffer(f"{n}_w", w)
            b = _bias(conv)
            self.register_buffer(f"{n}_b", b if b is not None else None)
        self._blk = [blk]                      # not a submodule: it reads this module's tensors
        self.share()

    def share(self) -> None:
        """A frozen reference block reads this block's convolution weights (same values; only the
        strides differ) and its SPADEs read their look-up tables."""
        blk = self._blk[0]
        for n in ("conv_0", "conv_1") + (("conv_s",) if self.learned_shortcut else ()):
            conv = getattr(blk, n)
            if not hasattr(conv, "weight_orig"):        # spectral norm not frozen: its own weight
                conv.weight.data = getattr(self, f"{n}_w")
            if conv.bias is not None:
                conv.bias.data = getattr(self, f"{n}_b")
        for n in ("norm_0", "norm_1") + (("norm_s",) if self.learned_shortcut else ()):
            getattr(self, n).share()

    def forward(self, held: list, lv: _Level) -> torch.Tensor:
        """``held``: [x], taken out so x is freed as soon as the block is done with it."""
        x = held.pop()
        trim_heap()
        if self.learned_shortcut:
            x_s = self.norm_s(x, lv, act=False, proj=self.conv_s_w.view(self.conv_s_w.shape[:2]))
            if self.conv_s_b is not None:
                x_s = x_s.add_(self.conv_s_b.view(1, -1, 1, 1))
            # x is not needed again: normalise it in place
            dx = conv3x3(self.norm_0(x, lv, act=True, inplace=True), self.conv_0_w, self.conv_0_b)
            del x
        else:
            x_s = x
            dx = conv3x3(self.norm_0(x, lv, act=True), self.conv_0_w, self.conv_0_b)
        dx = conv3x3(self.norm_1(dx, lv, act=True, inplace=True), self.conv_1_w, self.conv_1_b)
        return dx.add_(x_s)


class FastSPADEGenerator(nn.Module):
    """Drop-in replacement for a non-VAE or VAE :class:`SPADEGenerator` at inference.

    ``n_onehot``: the one-hot class channels (with dontcare) of the semantic input; one more channel,
    if the model has it, is the instance-edge map. Models whose SPADEs cannot be computed by look-ups
    (no class count, 5x5 SPADE kernels, several extra channels) run the reference.
    """

    def __init__(self, ref: SPADEGenerator, n_onehot: int | None = None):
        super().__init__()
        cfg = ref.cfg
        self.cfg = cfg
        self._ref = [ref]                     # not a submodule: the weights are the same tensors
        self.lookup = supports_lookup(ref, n_onehot)
        self.n_onehot = n_onehot
        self.edge = bool(self.lookup and cfg.semantic_nc == n_onehot + 1)
        self.ks = cfg.spade_ks
        ups = cfg.num_upsampling_layers
        order = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"] + (
            ["up_4"] if ups == "most" else [])
        lv = {"head_0": 0, "G_middle_0": 1, "G_middle_1": 1 if ups == "normal" else 2}
        for i, n in enumerate(order[3:]):
            lv[n] = lv["G_middle_1"] + 1 + i
        self.levels, self.order = lv, order
        self.latent_size = ref.latent_size
        if not self.lookup:
            self.eval()
            return
        self.blocks = nn.ModuleDict({n: _FastBlock(getattr(ref, n), n_onehot) for n in order})
        self.max_2c = {}
        for n in order:
            blk = self.blocks[n]
            c = max(getattr(blk, m).c for m in ("norm_0", "norm_1", "norm_s") if hasattr(blk, m))
            self.max_2c[lv[n]] = max(self.max_2c.get(lv[n], 0), 2 * c)
        self.register_buffer("fc_w", ref.fc.weight.detach())
        self.register_buffer("fc_b", ref.fc.bias.detach())
        self.register_buffer("img_w", ref.conv_img.weight.detach())
        self.register_buffer("img_b", ref.conv_img.bias.detach())
        self.eval()

    def _apply(self, fn, recurse: bool = True):
        """``.to(device)`` / ``.double()``: buffers move, then the reference is pointed at them again, so
        the weights stay one copy on the new device (move this module before the reference: the
        reference's own move is then a no-op)."""
        super()._apply(fn, recurse)
        if self.lookup:
            ref = self._ref[0]
            for blk in self.blocks.values():
                blk.share()
            ref.fc.weight.data, ref.fc.bias.data = self.fc_w, self.fc_b
            ref.conv_img.weight.data, ref.conv_img.bias.data = self.img_w, self.img_b
        return self

    def keys_from_semantics(self, seg: torch.Tensor) -> torch.Tensor | None:
        """(B, H, W) keys if ``seg`` is exactly one-hot [+ a 0/1 edge channel], else None."""
        from ..labels.maps import keys_from_semantics

        return keys_from_semantics(seg, self.n_onehot, self.edge)

    @torch.inference_mode()
    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        keys = self.keys_from_semantics(seg) if self.lookup else None
        if keys is None:
            return self._ref[0](seg, z)
        return self.forward_labels(keys, z)

    @torch.inference_mode()
    def forward_labels(self, keys: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``keys``: (B, H, W) integers, class (or ``2 * class + edge`` for models with an edge input)."""
        if not self.lookup:
            raise ValueError("this model has no look-up path; call it with the semantic tensor")
        cfg = self.cfg
        keys = keys.long()
        bsz, h, w = keys.shape
        sh, sw = self.latent_size(h, w)
        dt = self.fc_w.dtype

        def at(hh: int, ww: int) -> torch.Tensor:
            if (hh, ww) == (h, w):
                return keys
            return F.interpolate(keys[:, None].to(torch.float64), size=(hh, ww), mode="nearest")[:, 0].long()

        if cfg.use_vae:
            if z is None:
                z = torch.randn(bsz, cfg.z_dim, device=keys.device, dtype=dt)
            x = F.linear(z, self.fc_w, self.fc_b).view(-1, 16 * cfg.ngf, sh, sw)
        else:
            small = at(sh, sw)
            k = self.n_onehot
            cls = small // 2 if self.edge else small
            seg = F.one_hot(cls, k).permute(0, 3, 1, 2).to(dt)
            if self.edge:
                seg = torch.cat([seg, (small % 2)[:, None].to(dt)], 1)
            x = F.conv2d(seg, self.fc_w, self.fc_b, padding=1)
        x = x.contiguous(memory_format=torch.channels_last)
        level, cur = 0, None
        cin = self.n_onehot + (1 if self.edge else 0)
        for n in self.order:
            if self.levels[n] != level:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                level = self.levels[n]
            if cur is None or cur.shape[1:] != tuple(x.shape[2:]):
                cur = None
                trim_heap()        # the lower resolutions are done with
                cur = _Level(at(x.shape[2], x.shape[3]), self.edge, self.n_onehot, cin, self.max_2c[self.levels[n]],
                             self.ks)
            held = [x]
            del x
            x = self.blocks[n](held, cur)
        cur = None
        x = F.conv2d(F.leaky_relu_(x, 0.2), self.img_w, self.img_b, padding=1)
        return torch.tanh_(x).contiguous()

"""Fast inference path for SPADE generators: the same weights and the same function as the reference
(:class:`engine.models.spade.SPADEGenerator` in eval mode), computed with fewer, larger operations.

- Spectral norm is folded once into plain weights (``weight_orig / (u . W v)`` with the stored u, v).
- Frozen batch-norm statistics are applied to the activations (eval-mode batch norm), not folded into
  the gamma/beta weights: folding would need a second copy of those weights, whereas unfolded the
  reference's ``mlp_gamma``/``mlp_beta`` and main convolution weights are views of the fast path's
  single copy (the loaded model holds its weights once).
- Each SPADE's ``mlp_gamma`` and ``mlp_beta`` become one convolution; the ``mlp_shared`` convolutions of
  every SPADE working at the same resolution (they all read the same label map) become one.
- With many classes, the ``mlp_shared`` convolution over the one-hot map is computed as a gather:
  a 3x3 convolution of a one-hot map is the sum of nine table look-ups, K times fewer operations.
- A SPADE's gamma and beta at a pixel depend only on the labels in its 5x5 neighbourhood. Where that
  neighbourhood holds one class (and the pixel is 2 px inside the image), they are a per-class constant
  read from a table; only pixels near label boundaries run the convolution ("sparse" levels).
- channels_last memory format throughout.

The reference stays the op-for-op official computation that the test vectors check (``--reference``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..devices import trim_heap
from .spade import SPADEGenerator

# one-hot channels from which the gather beats the dense convolution on CPU (measured by the bench)
GATHER_MIN_CLASSES = 24
BOUNDARY_CHUNK = 8192           # boundary pixels per im2col product


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


class _FastNorm(nn.Module):
    """One SPADE: per-channel normalisation then a fused gamma/beta convolution on its hidden slice."""

    def __init__(self, spade_mod, hidden_slice: slice):
        super().__init__()
        pf = spade_mod.param_free_norm
        self.batch = isinstance(pf, nn.BatchNorm2d)
        c = spade_mod.mlp_gamma.weight.shape[0]
        self.c = c
        self.eps = pf.eps
        if self.batch:      # frozen statistics: the reference's own eval-mode batch norm
            self.register_buffer("run_mean", pf.running_mean.detach())
            self.register_buffer("run_var", pf.running_var.detach())
        wg, wb = spade_mod.mlp_gamma.weight.detach(), spade_mod.mlp_beta.weight.detach()
        nh = wg.shape[1]
        self.register_buffer("b", torch.cat([spade_mod.mlp_gamma.bias.detach() + 1.0,         # 1 + gamma
                                             spade_mod.mlp_beta.bias.detach()], 0))
        self.pad = spade_mod.mlp_gamma.padding
        self.hidden = hidden_slice
        if wg.shape[2:] == (3, 3):
            # one copy of gamma|beta, laid out for the boundary pixels (im2col rows, tap-major, times
            # this matrix); the reference's mlp_gamma / mlp_beta weights become views of it
            wmat = torch.cat([wg, wb], 0).permute(2, 3, 1, 0).reshape(9 * nh, 2 * c).contiguous()
            self.register_buffer("wmat", wmat)
            spade_mod.mlp_gamma.weight.data = self.w[:c]
            spade_mod.mlp_beta.weight.data = self.w[c:]
        else:
            self.register_buffer("wmat", None)
            self.register_buffer("w_own", torch.cat([wg, wb], 0))
        self.register_buffer("table", None)      # per-key constants, set by FastSPADEGenerator

    @property
    def w(self) -> torch.Tensor:
        """gamma|beta convolution weight (2C, nh, k, k); a view of ``wmat`` where there is one."""
        if self.wmat is None:
            return self.w_own
        nh = self.wmat.shape[0] // 9
        return self.wmat.view(3, 3, nh, 2 * self.c).permute(3, 2, 0, 1)

    def build_table(self, w_shared: torch.Tensor, b_shared: torch.Tensor, n_onehot: int) -> None:
        """gamma|beta of a pixel whose 5x5 neighbourhood is one key (class, or class*2 + edge bit)."""
        ws = w_shared[self.hidden].sum((2, 3))                        # (nh, C_in): 3x3 taps of one class
        bs = b_shared[self.hidden]
        pre = (ws[:, :n_onehot].T + bs)                                # (K, nh)
        if ws.shape[1] == n_onehot + 1:                                # instance-edge channel: key = 2c + e
            pre = torch.stack([pre, pre + ws[:, n_onehot]], 1).reshape(2 * n_onehot, -1)
        act = F.relu(pre)
        self.table = (act @ self.w.sum((2, 3)).T + self.b).contiguous()

    def forward(self, x: torch.Tensor, ctx: "_LevelCtx") -> torch.Tensor:
        if self.batch:
            n = F.batch_norm(x, self.run_mean, self.run_var, None, None, False, 0.0, self.eps)
        else:
            n = F.instance_norm(x, eps=self.eps)
        if ctx.sparse and self.table is not None and self.wmat is not None:
            gb_nhwc = F.embedding(ctx.key, self.table)                 # (B, H, W, 2C)
            flat = gb_nhwc.view(-1, 2 * self.c)
            for i in range(0, ctx.bidx.numel(), BOUNDARY_CHUNK):     # bounded im2col memory
                j = i + BOUNDARY_CHUNK
                flat.index_copy_(0, ctx.bidx[i:j], torch.addmm(self.b, ctx.cols(self.hidden, i, j), self.wmat))
            gb = gb_nhwc.permute(0, 3, 1, 2)
        else:
            gb = F.conv2d(ctx.actv[:, self.hidden], self.w, self.b, padding=self.pad)
        return torch.addcmul(gb[:, self.c:], n, gb[:, : self.c])


class _FastBlock(nn.Module):
    def __init__(self, blk, offset: int, nhidden: int):
        super().__init__()
        self.learned_shortcut = blk.learned_shortcut
        names = ["norm_0", "norm_1"] + (["norm_s"] if blk.learned_shortcut else [])
        self.norm_names = names
        for i, n in enumerate(names):
            setattr(self, n, _FastNorm(getattr(blk, n), slice(offset + i * nhidden, offset + (i + 1) * nhidden)))
        for n in ("conv_0", "conv_1") + (("conv_s",) if blk.learned_shortcut else ()):
            conv = getattr(blk, n)
            w = _plain_weight(conv).contiguous(memory_format=torch.channels_last)
            if not hasattr(conv, "weight_orig"):
                # a frozen reference shares this one copy (same values; only the strides change)
                conv.weight.data = w
            self.register_buffer(f"{n}_w", w)
            b = _bias(conv)
            self.register_buffer(f"{n}_b", b if b is not None else None)

    def forward(self, x: torch.Tensor, ctx: "_LevelCtx") -> torch.Tensor:
        if self.learned_shortcut:
            x_s = F.conv2d(self.norm_s(x, ctx), self.conv_s_w, self.conv_s_b)
        else:
            x_s = x
        dx = F.conv2d(F.leaky_relu(self.norm_0(x, ctx), 0.2), self.conv_0_w, self.conv_0_b, padding=1)
        dx = F.conv2d(F.leaky_relu(self.norm_1(dx, ctx), 0.2), self.conv_1_w, self.conv_1_b, padding=1)
        return x_s + dx


class _LevelCtx:
    """What every SPADE at one resolution shares: hidden activations, the key map, boundary pixels."""

    SPARSE_MAX_FRACTION = 0.85

    def __init__(self, actv: torch.Tensor, key: torch.Tensor | None):
        self.actv, self.key, self.sparse = actv, key, False
        if key is None:
            return
        b, h, w = key.shape
        if h < 5 or w < 5:
            return
        kf = key[:, None].float()
        mx = F.max_pool2d(kf, 5, stride=1, padding=2)
        mn = -F.max_pool2d(-kf, 5, stride=1, padding=2)
        boundary = (mx != mn)[:, 0]
        boundary[:, :2] = True
        boundary[:, -2:] = True
        boundary[:, :, :2] = True
        boundary[:, :, -2:] = True
        bidx = boundary.reshape(-1).nonzero()[:, 0]
        if bidx.numel() > self.SPARSE_MAX_FRACTION * key.numel():
            return
        self.sparse, self.bidx = True, bidx
        bi, r = bidx // (h * w), bidx % (h * w)
        base = bi * (h + 2) * (w + 2) + (r // w) * (w + 2) + (r % w)
        taps = torch.tensor([dy * (w + 2) + dx for dy in range(3) for dx in range(3)], device=key.device)
        self.rows = base[:, None] + taps[None, :]                          # (Nb, 9) im2col rows
        self._flat: dict[int, torch.Tensor] = {}

    def cols(self, hidden: slice, i: int = 0, j: int | None = None) -> torch.Tensor:
        """im2col rows (Nb, 9*nh) of one SPADE's hidden activations at the boundary pixels."""
        flat = self._flat.get(hidden.start)
        if flat is None:
            # that SPADE's channels, zero-padded like the convolution, as contiguous rows
            nhwc = F.pad(self.actv[:, hidden].permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))
            flat = self._flat[hidden.start] = nhwc.reshape(-1, nhwc.shape[-1])
        rows = self.rows[i:j]
        return F.embedding(rows, flat).reshape(rows.shape[0], -1)


class _SharedHidden(nn.Module):
    """``relu(conv3x3(seg))`` for every SPADE at one resolution, in one operation."""

    def __init__(self, convs: list[nn.Conv2d], n_onehot: int | None, gather: bool):
        super().__init__()
        w = torch.cat([c.weight.detach() for c in convs], 0)              # (O, C, 3, 3)
        b = torch.cat([c.bias.detach() for c in convs], 0)
        self.pad = convs[0].padding
        self.register_buffer("b", b)
        self.w_full = w                                                      # for the per-key tables
        self.gather = gather and n_onehot is not None and w.shape[2:] == (3, 3)
        if self.gather:
            k = n_onehot
            o = w.shape[0]
            table = torch.zeros(9, k + 1, o)                                 # row k: the zero padding
            table[:, :k] = w[:, :k].permute(2, 3, 1, 0).reshape(9, k, o)
            self.register_buffer("table", table.reshape(9 * (k + 1), o))
            self.k = k
            rest = w[:, k:]
            self.register_buffer("w_rest", rest.contiguous(memory_format=torch.channels_last)
                                 if rest.shape[1] else None)
        else:
            self.register_buffer("w", w.contiguous(memory_format=torch.channels_last))

    def forward(self, seg: torch.Tensor | None, labels: torch.Tensor | None, rest: torch.Tensor | None) -> torch.Tensor:
        if not self.gather:
            return F.relu(F.conv2d(seg, self.w, self.b, padding=self.pad))
        bsz, h, w = labels.shape
        lp = F.pad(labels, (1, 1, 1, 1), value=self.k)
        # one bag of nine look-ups per pixel: tap i of the 3x3 window reads rows i*(k+1) + label
        idx = torch.stack([lp[:, i // 3:i // 3 + h, i % 3:i % 3 + w] + i * (self.k + 1) for i in range(9)], -1)
        acc = F.embedding_bag(idx.reshape(-1, 9), self.table, mode="sum").view(bsz, h, w, -1)
        out = acc.permute(0, 3, 1, 2)                                        # NCHW view, channels_last strides
        if self.w_rest is not None:
            out = out + F.conv2d(rest, self.w_rest, None, padding=self.pad)
        return F.relu(out + self.b.view(1, -1, 1, 1))


class FastSPADEGenerator(nn.Module):
    """Drop-in replacement for a non-VAE or VAE :class:`SPADEGenerator` at inference."""

    def __init__(self, ref: SPADEGenerator, n_onehot: int | None = None, gather: bool | None = None,
                 sparse: bool = True):
        super().__init__()
        cfg = ref.cfg
        self.cfg = cfg
        nh = cfg.nhidden
        ups = cfg.num_upsampling_layers
        order = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"] + (
            ["up_4"] if ups == "most" else [])
        lv = {"head_0": 0, "G_middle_0": 1, "G_middle_1": 1 if ups == "normal" else 2}
        base = lv["G_middle_1"] + 1
        for i, n in enumerate(order[3:]):
            lv[n] = base + i
        self.levels = lv
        self.order = order
        if gather is None:
            gather = n_onehot is not None and n_onehot >= GATHER_MIN_CLASSES
        shared = {}
        offsets = {}
        for n in order:
            blk = getattr(ref, n)
            norms = ["norm_0", "norm_1"] + (["norm_s"] if blk.learned_shortcut else [])
            lst = shared.setdefault(lv[n], [])
            offsets[n] = len(lst) * nh
            lst.extend(getattr(blk, m).mlp_shared[0] for m in norms)
        self.shared = nn.ModuleDict({str(k): _SharedHidden(v, n_onehot, gather) for k, v in shared.items()})
        self.blocks = nn.ModuleDict({n: _FastBlock(getattr(ref, n), offsets[n], nh) for n in order})
        self.register_buffer("fc_w", ref.fc.weight.detach())
        self.register_buffer("fc_b", ref.fc.bias.detach())
        self.register_buffer("img_w", ref.conv_img.weight.detach())
        self.register_buffer("img_b", ref.conv_img.bias.detach())
        self.n_onehot = n_onehot
        n_rest = ref.fc.weight.shape[1] - n_onehot if (n_onehot and not cfg.use_vae) else (
            cfg.semantic_nc - n_onehot if n_onehot else 0)
        # per-key tables need the extra channels to be at most one binary (instance edge) map
        self.sparse = bool(sparse and n_onehot and n_rest in (0, 1))
        if self.sparse:
            for n in order:
                sh_mod = self.shared[str(lv[n])]
                for m in self.blocks[n].norm_names:
                    getattr(self.blocks[n], m).build_table(sh_mod.w_full, sh_mod.b, n_onehot)
        for sh_mod in self.shared.values():
            del sh_mod.w_full
        self.latent_size = ref.latent_size
        self.eval()

    @torch.inference_mode()
    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        seg = seg.contiguous(memory_format=torch.channels_last)
        sh, sw = self.latent_size(seg.shape[2], seg.shape[3])
        k = self.n_onehot
        labels_full = seg[:, :k].argmax(1) if k else None
        if cfg.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], cfg.z_dim, device=seg.device, dtype=seg.dtype)
            x = F.linear(z, self.fc_w, self.fc_b).view(-1, 16 * cfg.ngf, sh, sw)
        else:
            x = F.conv2d(F.interpolate(seg, size=(sh, sw), mode="nearest"), self.fc_w, self.fc_b, padding=1)
        x = x.contiguous(memory_format=torch.channels_last)
        ctx_cache: dict[int, _LevelCtx] = {}
        prev_level = 0
        for n in self.order:
            level = self.levels[n]
            if level != prev_level:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                prev_level = level
            if level not in ctx_cache:
                ctx_cache.clear()       # lower resolutions are done with
                trim_heap()
                ctx_cache[level] = self._level(seg, labels_full, x.shape[2], x.shape[3], level)
            x = self.blocks[n](x, ctx_cache[level])
        x = F.conv2d(F.leaky_relu(x, 0.2), self.img_w, self.img_b, padding=1)
        return torch.tanh(x).contiguous()

    def _level(self, seg, labels_full, h: int, w: int, level: int) -> _LevelCtx:
        k = self.n_onehot
        same = (h, w) == tuple(seg.shape[2:])
        shared = self.shared[str(level)]
        resize = (lambda t: t) if same else (lambda t: F.interpolate(t, size=(h, w), mode="nearest"))
        lab = rest = s = None
        if labels_full is not None:
            lab = labels_full if same else resize(labels_full[:, None].float())[:, 0].long()
            if seg.shape[1] > k:
                rest = resize(seg[:, k:])
        if not shared.gather:
            s = resize(seg)
        actv = shared(s, lab, rest)
        key = None
        if self.sparse:
            key = lab if rest is None else lab * 2 + (rest[:, 0] > 0.5).long()
        return _LevelCtx(actv, key)

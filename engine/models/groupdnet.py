"""GroupDNet (Zhu et al., SMIS 2020): a SPADE-style decoder whose convolutions are grouped per class.

Every class owns a slice of the latent code (8 channels on the latent grid), and the group count
of the decoder's convolutions decreases block by block, so early layers keep classes apart and late
layers blend them. Redrawing or mixing one class's slice restyles that class only (after training).

Module and parameter names follow Seanseattle/SMIS so the official checkpoints load key for key.
The three official generators (DeepFashion, Cityscapes, ADE20K) differ in group counts, SPADE mlp
widths and, for Cityscapes, in interleaving the instance-edge map with every class mask. Rather than
retyping those per-dataset formulas, every layer's width and group count is read from the
checkpoint's shapes (:func:`infer_config`), so any GroupDNet variant with these key names loads.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import SPADE, load_official, param_free_norm, spectral
from .spade import UPSAMPLING_LAYERS

Z_PER_CLASS = 8          # latent channels per class (official: semantic_nc * 8 input channels of fc)
BLOCK_ORDER = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3", "up_4")


@dataclass
class GroupSpadeSpec:
    """Widths and group counts of one GroupSPADE layer."""

    norm_nc: int
    nhidden: int
    shared_groups: int
    gamma_groups: int


@dataclass
class GroupBlockSpec:
    fin: int
    fout: int
    groups: int                       # group count of conv_0 / conv_1 / conv_s
    norms: dict[str, GroupSpadeSpec]  # norm_0, norm_1[, norm_s]


@dataclass
class GroupDNetConfig:
    variant: str                      # 'deepfashion' | 'cityscapes' | 'ade20k' (which official forward)
    num_classes: int                  # classes with their own latent code (official semantic_nc)
    instance_edge: bool               # an instance-edge channel follows the class masks (Cityscapes)
    ngf: int
    fc_out: int
    fc_groups: int
    blocks: dict[str, GroupBlockSpec] = field(default_factory=dict)
    num_upsampling_layers: str = "more"
    latent_hw: tuple[int, int] = (4, 4)
    use_up_4: bool = False            # ADE20K stores an up_4 block that its forward never uses
    norm: str = "batch"
    spectral: bool = True
    spade_ks: int = 3

    @property
    def n_up(self) -> int:
        return UPSAMPLING_LAYERS[self.num_upsampling_layers]

    @property
    def input_nc(self) -> int:
        """Generator input channels: one mask per class [+ instance edge]."""
        return self.num_classes + (1 if self.instance_edge else 0)

    @property
    def seg_nc(self) -> int:
        """Channels the SPADE layers see (Cityscapes pairs every class mask with the edge map)."""
        return 2 * self.num_classes if self.instance_edge else self.num_classes

    @property
    def z_channels(self) -> int:
        return self.num_classes * Z_PER_CLASS

    def native_hw(self) -> tuple[int, int]:
        f = 2 ** self.n_up
        return self.latent_hw[0] * f, self.latent_hw[1] * f

    def to_dict(self) -> dict:
        d = asdict(self)
        d["latent_hw"] = list(self.latent_hw)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "GroupDNetConfig":
        d = dict(d)
        d["blocks"] = {k: GroupBlockSpec(fin=b["fin"], fout=b["fout"], groups=b["groups"],
                                         norms={n: GroupSpadeSpec(**s) for n, s in b["norms"].items()})
                       for k, b in d.get("blocks", {}).items()}
        d["latent_hw"] = tuple(d.get("latent_hw", (4, 4)))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


class GroupSPADE(SPADE):
    """SPADE with grouped mlps (the forward is SPADE's: ``norm(x) * (1 + gamma(seg)) + beta(seg)``)."""

    def __init__(self, spec: GroupSpadeSpec, seg_nc: int, norm_kind: str = "batch", ks: int = 3):
        nn.Module.__init__(self)
        pw = ks // 2
        self.param_free_norm = param_free_norm(norm_kind, spec.norm_nc)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(seg_nc, spec.nhidden, ks, padding=pw, groups=spec.shared_groups), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(spec.nhidden, spec.norm_nc, ks, padding=pw, groups=spec.gamma_groups)
        self.mlp_beta = nn.Conv2d(spec.nhidden, spec.norm_nc, ks, padding=pw, groups=spec.gamma_groups)


class GroupSPADEResnetBlock(nn.Module):
    def __init__(self, spec: GroupBlockSpec, cfg: GroupDNetConfig):
        super().__init__()
        fin, fout, g = spec.fin, spec.fout, spec.groups
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = spectral(nn.Conv2d(fin, fmiddle, 3, padding=1, groups=g), cfg.spectral)
        self.conv_1 = spectral(nn.Conv2d(fmiddle, fout, 3, padding=1, groups=g), cfg.spectral)
        if self.learned_shortcut:
            self.conv_s = spectral(nn.Conv2d(fin, fout, 1, bias=False, groups=g), cfg.spectral)
        for name, ns in spec.norms.items():
            self.add_module(name, GroupSPADE(ns, cfg.seg_nc, cfg.norm, cfg.spade_ks))

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class GroupDNetGenerator(nn.Module):
    """The GroupDNet decoder. ``forward(seg, z)``: ``seg`` holds one mask per class [+ edge map],
    ``z`` is either ``(B, classes*8, h, w)`` or per class ``(B, classes, 8, h*w)``."""

    def __init__(self, cfg: GroupDNetConfig):
        super().__init__()
        self.cfg = cfg
        self.fc = nn.Conv2d(cfg.z_channels, cfg.fc_out, 3, padding=1, groups=cfg.fc_groups)
        for name in BLOCK_ORDER:
            if name in cfg.blocks:
                self.add_module(name, GroupSPADEResnetBlock(cfg.blocks[name], cfg))
        last = "up_4" if cfg.use_up_4 else "up_3"
        self.conv_img = nn.Conv2d(cfg.blocks[last].fout, 3, 3, padding=1)

    def prepare_seg(self, seg: torch.Tensor) -> torch.Tensor:
        """The official Cityscapes forward pairs each class mask with the edge map: [m0, e, m1, e, ...]."""
        if not self.cfg.instance_edge:
            return seg
        b, _, h, w = seg.shape
        c = self.cfg.num_classes
        sem = seg[:, :c].unsqueeze(2)
        edge = seg[:, c:c + 1].unsqueeze(2).expand(b, c, 1, h, w)
        return torch.cat((sem, edge), dim=2).reshape(b, 2 * c, h, w)

    def z_grid(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 4 and z.shape[1] == self.cfg.num_classes and z.shape[2] == Z_PER_CLASS:
            b, _, _, hw = z.shape
            lh, lw = self.cfg.latent_hw
            if hw != lh * lw:   # a latent grid of another size (non-native output size)
                lh = int(round((hw * lh / lw) ** 0.5))
                lw = hw // lh
            return z.reshape(b, self.cfg.z_channels, lh, lw)
        return z

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        seg = self.prepare_seg(seg)
        if z is None:
            lh, lw = cfg.latent_hw
            z = torch.randn(seg.shape[0], cfg.z_channels, lh, lw, device=seg.device, dtype=seg.dtype)
        x = self.fc(self.z_grid(z))
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        x = self.head_0(x, seg)
        x = self.G_middle_0(up(x), seg)
        if cfg.num_upsampling_layers in ("more", "most"):
            x = up(x)
        x = self.G_middle_1(x, seg)
        x = self.up_0(up(x), seg)
        x = self.up_1(up(x), seg)
        x = self.up_2(up(x), seg)
        x = self.up_3(up(x), seg)
        if cfg.use_up_4:
            x = self.up_4(up(x), seg)
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.tanh(x)


# ----------------------------------------------------------------------------------------------
# Configuration inference from checkpoints
# ----------------------------------------------------------------------------------------------

def is_groupdnet_generator(sd: Mapping) -> bool:
    """SPADE-like key names whose fc and SPADE mlps are grouped convolutions."""
    if not ("fc.weight" in sd and "conv_img.weight" in sd and "head_0.norm_0.mlp_shared.0.weight" in sd):
        return False
    fc = tuple(sd["fc.weight"].shape)
    if len(fc) != 4:
        return False
    cin = _conv_in(sd, "head_0.conv_0")
    return cin is not None and cin != fc[0]   # grouped: per-group input width < block width


def _conv_w(sd: Mapping, prefix: str):
    return sd.get(prefix + ".weight_orig", sd.get(prefix + ".weight"))


def _conv_in(sd: Mapping, prefix: str) -> int | None:
    w = _conv_w(sd, prefix)
    return None if w is None else int(w.shape[1])


def _groups(total_in: int, per_group: int, what: str) -> int:
    if per_group <= 0 or total_in % per_group:
        raise ValueError(f"{what}: {total_in} input channels cannot be split into groups of {per_group}")
    return total_in // per_group


def infer_config(sd: Mapping, hint_upsampling: str | None = None) -> GroupDNetConfig:
    """Read every width and group count from the shapes of a GroupDNet ``state_dict``."""
    if not is_groupdnet_generator(sd):
        raise ValueError("not a GroupDNet generator state_dict")
    shp = lambda k: tuple(sd[k].shape)  # noqa: E731
    fc = shp("fc.weight")
    fc_out = fc[0]
    # the Cityscapes variant feeds SPADE each class mask paired with the edge map: per-group input 2
    inst = shp("head_0.norm_0.mlp_shared.0.weight")[1] == 2
    has_up4 = "up_4.conv_0.weight_orig" in sd or "up_4.conv_0.weight" in sd
    conv_img_in = shp("conv_img.weight")[1]
    blocks: dict[str, GroupBlockSpec] = {}
    fin = fc_out
    for name in BLOCK_ORDER:
        w0 = _conv_w(sd, f"{name}.conv_0")
        if w0 is None:
            continue
        w1 = _conv_w(sd, f"{name}.conv_1")
        g = _groups(fin, int(w0.shape[1]), f"{name}.conv_0")
        fout = int(w1.shape[0])
        blocks[name] = GroupBlockSpec(fin=fin, fout=fout, groups=g, norms={})
        fin = fout
    # every official variant groups the head block per class
    hs = shp("head_0.norm_0.mlp_shared.0.weight")
    num_classes = blocks["head_0"].groups
    seg_nc = 2 * num_classes if inst else num_classes
    for name, spec in blocks.items():
        for nn_ in ("norm_0", "norm_1", "norm_s"):
            k = f"{name}.{nn_}.mlp_shared.0.weight"
            if k not in sd:
                continue
            sw, gw = shp(k), shp(f"{name}.{nn_}.mlp_gamma.weight")
            spec.norms[nn_] = GroupSpadeSpec(norm_nc=gw[0], nhidden=sw[0],
                                             shared_groups=_groups(seg_nc, sw[1], f"{name}.{nn_}.mlp_shared"),
                                             gamma_groups=_groups(sw[0], gw[1], f"{name}.{nn_}.mlp_gamma"))
    use_up4 = has_up4 and conv_img_in == blocks["up_4"].fout and conv_img_in != blocks["up_3"].fout
    z_ch = num_classes * Z_PER_CLASS
    fc_groups = _groups(z_ch, fc[1], "fc")
    last = blocks["up_4" if use_up4 else "up_3"]
    ngf = last.fout if not (has_up4 and not use_up4) else blocks["up_4"].fout
    ups = "most" if use_up4 else (hint_upsampling if hint_upsampling in ("normal", "more") else "more")
    latent = (4, 8) if inst else (4, 4)
    spectral_ = "head_0.conv_0.weight_orig" in sd
    norm = "batch" if "head_0.norm_0.param_free_norm.running_mean" in sd else "instance"
    variant = "cityscapes" if inst else ("ade20k" if has_up4 else "deepfashion")
    return GroupDNetConfig(variant=variant, num_classes=num_classes, instance_edge=inst, ngf=ngf, fc_out=fc_out,
                           fc_groups=fc_groups, blocks=blocks, num_upsampling_layers=ups, latent_hw=latent,
                           use_up_4=use_up4, norm=norm, spectral=spectral_, spade_ks=hs[2])


def load_generator(sd: Mapping[str, torch.Tensor], cfg: GroupDNetConfig | None = None) -> GroupDNetGenerator:
    return load_official(GroupDNetGenerator(cfg or infer_config(sd)), sd)


def mix_codes(base: torch.Tensor, other: torch.Tensor, t: float) -> torch.Tensor:
    """Blend two per-class codes keeping their scale: spherical interpolation of N(0, I) samples."""
    if t <= 0:
        return base
    if t >= 1:
        return other
    a, b = base.flatten(), other.flatten()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so) < 1e-6:
        return (1 - t) * base + t * other
    return (torch.sin((1 - t) * omega) / so) * base + (torch.sin(t * omega) / so) * other


# ----------------------------------------------------------------------------------------------
# New models (training): a DeepFashion-style group schedule for any class count, and the encoder
# ----------------------------------------------------------------------------------------------

def make_config(num_classes: int, ngf: int = 24, nhidden: int = 96, num_upsampling_layers: str = "normal",
                latent_hw: tuple[int, int] = (6, 8), norm: str = "batch") -> GroupDNetConfig:
    """A GroupDNet for ``num_classes`` classes laid out like the official DeepFashion generator: the
    head and first middle block grouped per class, then the group count halves every two blocks down
    to one (so early layers keep classes apart and late ones blend them). Widths: 16 ngf at the
    head, halving from up_0 on. Every width must divide by its group count."""
    c = num_classes
    sched = [c, c, max(1, c // 2), max(1, c // 2), max(1, c // 4), max(1, c // 4), 1]
    names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
    widths = [16 * ngf, 16 * ngf, 16 * ngf, 8 * ngf, 4 * ngf, 2 * ngf, ngf]
    blocks: dict[str, GroupBlockSpec] = {}
    fin = 16 * ngf
    for name, g, fout in zip(names, sched, widths):
        for w in (fin, fout, nhidden):
            if w % g:
                raise ValueError(f"GroupDNet {name}: width {w} does not divide into {g} groups; pick ngf and "
                                 f"nhidden as multiples of {c}")
        norms = {"norm_0": GroupSpadeSpec(fin, nhidden, g, g), "norm_1": GroupSpadeSpec(min(fin, fout), nhidden, g, g)}
        if fin != fout:
            norms["norm_s"] = GroupSpadeSpec(fin, nhidden, g, g)
        blocks[name] = GroupBlockSpec(fin=fin, fout=fout, groups=g, norms=norms)
        fin = fout
    return GroupDNetConfig(variant="deepfashion", num_classes=c, instance_edge=False, ngf=ngf, fc_out=16 * ngf,
                           fc_groups=c, blocks=blocks, num_upsampling_layers=num_upsampling_layers,
                           latent_hw=tuple(latent_hw), norm=norm)


class GroupEncoder(nn.Module):
    """GroupDNet's style encoder: the photo split by the class masks (3 channels per class) through
    grouped stride-2 convolutions (one group per class; spectral norm + instance norm, LeakyReLU),
    then grouped 3x3 heads giving each class its own 8-channel mean and log-variance on the latent
    grid. Key names follow the official encoder (``layer{i}.0``, ``fc_mu``, ``fc_var``)."""

    def __init__(self, num_classes: int, ndf: int = 32, n_layers: int = 6):
        super().__init__()
        c = num_classes
        self.num_classes, self.n_layers = c, n_layers
        widths = [ndf, 2 * ndf, 4 * ndf, 8 * ndf] + [8 * ndf] * max(0, n_layers - 4)
        cin = 3
        for i in range(n_layers):
            conv = nn.Conv2d(cin * c, widths[i] * c, 3, stride=2, padding=1, groups=c, bias=False)
            self.add_module(f"layer{i + 1}", nn.Sequential(nn.utils.spectral_norm(conv),
                                                           nn.InstanceNorm2d(widths[i] * c, affine=False)))
            cin = widths[i]
        self.fc_mu = nn.Conv2d(cin * c, Z_PER_CLASS * c, 3, padding=1, groups=c)
        self.fc_var = nn.Conv2d(cin * c, Z_PER_CLASS * c, 3, padding=1, groups=c)

    def forward(self, image: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` (B, 3, H, W) in [-1, 1], ``masks`` (B, C, H, W) one-hot -> (mu, logvar), each
        (B, C*8, H/2^n, W/2^n)."""
        b, c, h, w = masks.shape
        x = (image[:, None] * masks[:, :, None]).reshape(b, 3 * c, h, w)
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x if i == 0 else F.leaky_relu(x, 0.2))
        x = F.leaky_relu(x, 0.2)
        return self.fc_mu(x), self.fc_var(x)

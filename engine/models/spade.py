"""SPADE (Park et al., 2019): generator, VAE style encoder and multi-scale patch discriminator.

Module and parameter names follow NVlabs/SPADE, so official checkpoints load key for key. The
configuration is data (:class:`SpadeConfig`) and can be inferred from a ``state_dict``
(:func:`infer_config`), so nobody retypes training options to load a file.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import SPADEResnetBlock, load_official, nonspade_norm_layer

UPSAMPLING_LAYERS = {"normal": 5, "more": 6, "most": 7}


@dataclass
class SpadeConfig:
    """Everything that defines the SPADE networks' shapes and forward pass."""

    semantic_nc: int                 # generator input channels (one-hot classes [+dontcare] [+edge])
    ngf: int = 64
    num_upsampling_layers: str = "normal"
    use_vae: bool = False
    z_dim: int = 256
    norm: str = "batch"              # SPADE's parameter-free norm: batch (official syncbatch) | instance
    spectral: bool = True
    nhidden: int = 128               # SPADE mlp hidden width (official: 128)
    spade_ks: int = 3
    latent_hw: tuple[int, int] | None = None   # needed for VAE models (fc is a Linear)
    # Encoder (VAE) options
    nef: int | None = None           # ConvEncoder width (official: ngf)
    encoder_layer6: bool = True      # official: crop_size >= 256
    # Discriminator options (training only)
    ndf: int = 64
    n_layers_D: int = 4
    num_D: int = 2
    norm_D: str = "spectralinstance"

    @property
    def n_up(self) -> int:
        return UPSAMPLING_LAYERS[self.num_upsampling_layers]

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["latent_hw"] is not None:
            d["latent_hw"] = list(d["latent_hw"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "SpadeConfig":
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("latent_hw") is not None:
            kw["latent_hw"] = tuple(kw["latent_hw"])
        return cls(**kw)


class SPADEGenerator(nn.Module):
    def __init__(self, cfg: SpadeConfig):
        super().__init__()
        self.cfg = cfg
        nf = cfg.ngf
        blk = dict(semantic_nc=cfg.semantic_nc, norm_kind=cfg.norm, use_spectral=cfg.spectral,
                   nhidden=cfg.nhidden, ks=cfg.spade_ks)
        if cfg.use_vae:
            if cfg.latent_hw is None:
                raise ValueError("a VAE SPADE generator needs latent_hw")
            sh, sw = cfg.latent_hw
            self.fc = nn.Linear(cfg.z_dim, 16 * nf * sh * sw)
        else:
            self.fc = nn.Conv2d(cfg.semantic_nc, 16 * nf, 3, padding=1)
        self.head_0 = SPADEResnetBlock(16 * nf, 16 * nf, **blk)
        self.G_middle_0 = SPADEResnetBlock(16 * nf, 16 * nf, **blk)
        self.G_middle_1 = SPADEResnetBlock(16 * nf, 16 * nf, **blk)
        self.up_0 = SPADEResnetBlock(16 * nf, 8 * nf, **blk)
        self.up_1 = SPADEResnetBlock(8 * nf, 4 * nf, **blk)
        self.up_2 = SPADEResnetBlock(4 * nf, 2 * nf, **blk)
        self.up_3 = SPADEResnetBlock(2 * nf, 1 * nf, **blk)
        final_nc = nf
        if cfg.num_upsampling_layers == "most":
            self.up_4 = SPADEResnetBlock(1 * nf, nf // 2, **blk)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    def latent_size(self, h: int, w: int) -> tuple[int, int]:
        if self.cfg.use_vae:
            return tuple(self.cfg.latent_hw)
        f = 2 ** self.cfg.n_up
        return max(1, round(h / f)), max(1, round(w / f))

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        sh, sw = self.latent_size(seg.shape[2], seg.shape[3])
        if cfg.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], cfg.z_dim, device=seg.device, dtype=seg.dtype)
            x = self.fc(z).view(-1, 16 * cfg.ngf, sh, sw)
        else:
            x = self.fc(F.interpolate(seg, size=(sh, sw), mode="nearest"))
        x = self.head_0(x, seg)
        x = self._up(x)
        x = self.G_middle_0(x, seg)
        if cfg.num_upsampling_layers in ("more", "most"):
            x = self._up(x)
        x = self.G_middle_1(x, seg)
        x = self.up_0(self._up(x), seg)
        x = self.up_1(self._up(x), seg)
        x = self.up_2(self._up(x), seg)
        x = self.up_3(self._up(x), seg)
        if cfg.num_upsampling_layers == "most":
            x = self.up_4(self._up(x), seg)
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.tanh(x)


class ConvEncoder(nn.Module):
    """SPADE's VAE style encoder: image in [-1, 1] -> (mu, logvar) of a z_dim Gaussian."""

    def __init__(self, cfg: SpadeConfig):
        super().__init__()
        ndf = cfg.nef or cfg.ngf
        norm = "spectralinstance"
        conv = lambda i, o: nonspade_norm_layer(nn.Conv2d(i, o, 3, stride=2, padding=1), norm)  # noqa: E731
        self.layer1 = conv(3, ndf)
        self.layer2 = conv(ndf, ndf * 2)
        self.layer3 = conv(ndf * 2, ndf * 4)
        self.layer4 = conv(ndf * 4, ndf * 8)
        self.layer5 = conv(ndf * 8, ndf * 8)
        self.has_layer6 = cfg.encoder_layer6
        if self.has_layer6:
            self.layer6 = conv(ndf * 8, ndf * 8)
        s0 = 4
        self.fc_mu = nn.Linear(ndf * 8 * s0 * s0, cfg.z_dim)
        self.fc_var = nn.Linear(ndf * 8 * s0 * s0, cfg.z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[2] != 256 or x.shape[3] != 256:
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        x = self.layer1(x)
        x = self.layer2(act(x))
        x = self.layer3(act(x))
        x = self.layer4(act(x))
        x = self.layer5(act(x))
        if self.has_layer6:
            x = self.layer6(act(x))
        x = act(x).reshape(x.shape[0], -1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    std = torch.exp(0.5 * logvar)
    if eps is None:
        eps = torch.randn_like(std)
    return eps * std + mu


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, norm: str = "spectralinstance"):
        super().__init__()
        kw, padw = 4, int(math.ceil((4 - 1.0) / 2))
        nf = ndf
        seq = [[nn.Conv2d(input_nc, nf, kw, stride=2, padding=padw), nn.LeakyReLU(0.2, False)]]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            seq.append([nonspade_norm_layer(nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=padw), norm),
                        nn.LeakyReLU(0.2, False)])
        seq.append([nn.Conv2d(nf, 1, kw, stride=1, padding=padw)])
        self.n_models = len(seq)
        for i, s in enumerate(seq):
            self.add_module(f"model{i}", nn.Sequential(*s))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(self.n_models):
            x = getattr(self, f"model{i}")(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` patch discriminators on an image pyramid; returns every layer's features."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, num_D: int = 2,
                 norm: str = "spectralinstance"):
        super().__init__()
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", NLayerDiscriminator(input_nc, ndf, n_layers, norm))
        self.num_D = num_D

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i in range(self.num_D):
            out.append(getattr(self, f"discriminator_{i}")(x))
            x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
        return out


# ----------------------------------------------------------------------------------------------
# Configuration inference from checkpoints
# ----------------------------------------------------------------------------------------------

def is_spade_generator(sd: Mapping[str, torch.Tensor]) -> bool:
    return "fc.weight" in sd and any(k.startswith("head_0.norm_0.mlp_shared") for k in sd) \
        and "conv_img.weight" in sd


def infer_config(sd: Mapping[str, "torch.Tensor"], hint_upsampling: str | None = None,
                 image_hw: tuple[int, int] | None = None) -> SpadeConfig:
    """Infer a :class:`SpadeConfig` from a generator ``state_dict`` (values need only ``.shape``).

    'normal' and 'more' upsampling have identical keys; ``hint_upsampling`` (from a preset or a
    model card) resolves it, else ``image_hw`` with a VAE latent, else 'normal'.
    """
    shp = lambda k: tuple(sd[k].shape)  # noqa: E731
    if not is_spade_generator(sd):
        raise ValueError("not a SPADE generator state_dict")
    spectral = "head_0.conv_0.weight_orig" in sd
    wkey = "head_0.conv_0.weight_orig" if spectral else "head_0.conv_0.weight"
    ngf = shp(wkey)[0] // 16
    mlp = shp("head_0.norm_0.mlp_shared.0.weight")
    nhidden, semantic_nc, ks = mlp[0], mlp[1], mlp[2]
    norm = "batch" if "head_0.norm_0.param_free_norm.running_mean" in sd else "instance"
    fc = shp("fc.weight")
    use_vae = len(fc) == 2
    z_dim = fc[1] if use_vae else 256
    if "up_4.conv_0.weight_orig" in sd or "up_4.conv_0.weight" in sd:
        ups = "most"
    else:
        ups = hint_upsampling if hint_upsampling in ("normal", "more") else "normal"
    latent = None
    if use_vae:
        cells = fc[0] // (16 * ngf)
        if image_hw is not None:
            f = 2 ** UPSAMPLING_LAYERS[ups]
            latent = (image_hw[0] // f, image_hw[1] // f)
        else:
            # square latent if possible, else the widest 1:k aspect that fits
            s = int(round(math.sqrt(cells)))
            if s * s == cells:
                latent = (s, s)
            else:
                h = max(d for d in range(1, s + 1) if cells % d == 0)
                latent = (h, cells // h)
        if latent[0] * latent[1] != cells:
            raise ValueError(f"VAE fc has {cells} latent cells, which does not fit image size {image_hw}")
    return SpadeConfig(semantic_nc=semantic_nc, ngf=ngf, num_upsampling_layers=ups, use_vae=use_vae,
                       z_dim=z_dim, norm=norm, spectral=spectral, nhidden=nhidden, spade_ks=ks,
                       latent_hw=latent)


def infer_encoder_config(sd: Mapping[str, "torch.Tensor"]) -> dict:
    w = sd["layer1.0.weight_orig"] if "layer1.0.weight_orig" in sd else sd["layer1.0.weight"]
    return {"nef": int(w.shape[0]), "encoder_layer6": any(k.startswith("layer6.") for k in sd),
            "z_dim": int(sd["fc_mu.weight"].shape[0])}


def load_generator(sd: Mapping[str, torch.Tensor], cfg: SpadeConfig | None = None,
                   strict: bool = True) -> SPADEGenerator:
    """Build a generator for ``sd`` (inferring the config when not given) and load it."""
    cfg = cfg or infer_config(sd)
    g = SPADEGenerator(cfg)
    if not strict:
        g.load_state_dict(dict(sd), strict=False)
        return g.eval()
    return load_official(g, sd)

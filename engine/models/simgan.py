"""SIMGAN (Semantic Image Manipulation GAN), seed paper 001: text-guided edits of a source image.

Generator G(x, phi(t)):
- encoder: 3 convolutions (3x3 stride 1, then two 4x4 stride 2), batch norm and ReLU -> 4*ngf channels
  at a quarter of the resolution;
- conditioning augmentation: a linear map of the 384-d sentence embedding to the mean and log-variance
  of a ``ca_dim`` Gaussian; the forward edit samples it (diversity, with a seed), the cycle's
  reconstruction uses the mean (the paper applies the KL term only to the forward generation);
- residual block: the text code replicated over the feature map and concatenated, a joining 3x3
  convolution, then 16 residual units of two 3x3 convolutions each, batch norm and ReLU. Optionally
  (``text_every_unit``, our variant) every unit gets the code concatenated to its input as well, meant
  to make the colour-times-region interaction easier to learn than through a single join (not yet
  shown to help: CamVid run v3 still drifted to the identity);
- decoder: 2 transposed convolutions (4x4 stride 2) back to full resolution; the second gives RGB.
  Its tanh output is a *change* added to the source (clamped to [-1, 1]): what the text does not
  mention can pass through untouched, which is SIMGAN's "keep the text-irrelevant features".

Discriminator D(x, phi(t)): 8 convolutions with leaky ReLU and batch norm (four 4x4 stride-2, a two-conv
residual branch, the joining 1x1 convolution after the text code is concatenated, and the 4x4 output
convolution), giving a patch of real/fake scores for the image-text pair.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

TEXT_DIM = 384


@dataclass
class SimganConfig:
    ngf: int = 16
    ndf: int = 32
    ca_dim: int = 64
    n_res: int = 16
    text_dim: int = TEXT_DIM
    residual_output: bool = True
    text_every_unit: bool = False      # also concatenate the text code at the input of every residual unit

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SimganConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _cbr(cin, cout, k, s, p, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(True))
    return layers


class ResUnit(nn.Module):
    """Two 3x3 convolutions with batch norm and a skip. With ``code`` > 0 channels the text code map is
    concatenated to the first convolution's input (the unit's own copy of the text features)."""

    def __init__(self, c: int, code: int = 0):
        super().__init__()
        self.body = nn.Sequential(*_cbr(c + code, c, 3, 1, 1), *_cbr(c, c, 3, 1, 1, act=False))

    def forward(self, x, code_map=None):
        h = x if code_map is None else torch.cat([x, code_map], 1)
        return F.relu(x + self.body(h))


class CondAug(nn.Module):
    """Conditioning augmentation: text embedding -> (mu, logvar) of the text code."""

    def __init__(self, text_dim: int, ca_dim: int):
        super().__init__()
        self.fc = nn.Linear(text_dim, ca_dim * 2)
        with torch.no_grad():
            # Start with the text audible over the noise: the default init gives the mean components of
            # ~0.03 against a unit standard deviation, and the generator learns to ignore the code
            # before the text can get through (observed on CamVid). Means of ~0.3 and sigma 0.14 at
            # the start; the KL term then decides how much noise the trained model keeps.
            self.fc.weight.mul_(10.0)
            self.fc.bias[ca_dim:].fill_(-4.0)

    def forward(self, emb: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None,
                eps: torch.Tensor | None = None):
        mu, logvar = self.fc(emb).chunk(2, dim=1)
        if not sample:
            return mu, mu, logvar
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype) \
                if generator is not None else torch.randn_like(mu)
        return mu + eps * torch.exp(0.5 * logvar), mu, logvar


class SimganGenerator(nn.Module):
    def __init__(self, cfg: SimganConfig):
        super().__init__()
        self.cfg = cfg
        g = cfg.ngf
        self.encoder = nn.Sequential(nn.Conv2d(3, g, 3, 1, 1), nn.ReLU(True),
                                     *_cbr(g, 2 * g, 4, 2, 1), *_cbr(2 * g, 4 * g, 4, 2, 1))
        self.ca = CondAug(cfg.text_dim, cfg.ca_dim)
        self.join = nn.Sequential(*_cbr(4 * g + cfg.ca_dim, 4 * g, 3, 1, 1))
        self.res = nn.Sequential(*[ResUnit(4 * g, cfg.ca_dim if cfg.text_every_unit else 0)
                                   for _ in range(cfg.n_res)])
        self.decoder = nn.Sequential(nn.ConvTranspose2d(4 * g, 2 * g, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * g),
                                     nn.ReLU(True), nn.ConvTranspose2d(2 * g, 3, 4, 2, 1), nn.Tanh())

    def forward(self, x: torch.Tensor, emb: torch.Tensor, sample: bool = True,
                generator: torch.Generator | None = None, eps: torch.Tensor | None = None):
        """x: (N, 3, H, W) in [-1, 1] with H, W multiples of 4; emb: (N, 384). Returns (image, mu, logvar)."""
        f = self.encoder(x)
        c, mu, logvar = self.ca(emb, sample, generator, eps)
        cm = c[:, :, None, None].expand(-1, -1, f.shape[2], f.shape[3])
        f = self.join(torch.cat([f, cm], 1))
        unit_code = cm if self.cfg.text_every_unit else None
        for unit in self.res:
            f = unit(f, unit_code)
        out = self.decoder(f)
        if self.cfg.residual_output:
            out = (x + out).clamp(-1.0, 1.0)
        return out, mu, logvar


class SimganDiscriminator(nn.Module):
    def __init__(self, cfg: SimganConfig):
        super().__init__()
        d = cfg.ndf
        lr = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        self.down = nn.Sequential(nn.Conv2d(3, d, 4, 2, 1), lr(),
                                  nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * d), lr(),
                                  nn.Conv2d(2 * d, 4 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * d), lr(),
                                  nn.Conv2d(4 * d, 8 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(8 * d))
        self.branch = nn.Sequential(nn.Conv2d(8 * d, 2 * d, 1, 1, 0, bias=False), nn.BatchNorm2d(2 * d), lr(),
                                    nn.Conv2d(2 * d, 8 * d, 3, 1, 1, bias=False), nn.BatchNorm2d(8 * d))
        self.text = nn.Linear(cfg.text_dim, 128)
        self.join = nn.Sequential(nn.Conv2d(8 * d + 128, 8 * d, 1, 1, 0, bias=False), nn.BatchNorm2d(8 * d), lr())
        self.out = nn.Conv2d(8 * d, 1, 4, 1, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.down(x)
        h = F.leaky_relu(h + self.branch(h), 0.2)
        t = F.leaky_relu(self.text(emb), 0.2)
        h = self.join(torch.cat([h, t[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], 1))
        return self.out(h)


def kl_ca(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) as conditioning augmentation computes it (StackGAN's
    KL_loss, which SIMGAN adopts): the mean of the per-dimension terms over batch and code dimensions.
    Summing over the dimensions instead weighs the term ``ca_dim`` times more and, at lambda_ca = 1,
    squeezes the text out of the code (observed: KL -> 0.001 within 100 steps)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()


def infer_simgan_config(sd: dict, meta: dict | None = None) -> SimganConfig:
    """Configuration from a generator state dict's shapes (plus the residual flag kept in metadata)."""
    ngf = sd["encoder.0.weight"].shape[0]
    ca2, text_dim = sd["ca.fc.weight"].shape
    n_res = len({k.split(".")[1] for k in sd if k.startswith("res.")})
    residual = True
    if meta and "simgan" in meta:
        residual = bool(json.loads(meta["simgan"]).get("residual_output", True))
    every = sd["res.0.body.0.weight"].shape[1] > 4 * ngf
    return SimganConfig(ngf=ngf, ca_dim=ca2 // 2, n_res=n_res, text_dim=text_dim, residual_output=residual,
                        text_every_unit=every)

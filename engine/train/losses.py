"""GAN losses shared by every family (hinge, least squares, feature matching, KL)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _last(preds):
    return [p[-1] if isinstance(p, (list, tuple)) else p for p in preds]


def hinge_d_loss(pred_real, pred_fake) -> torch.Tensor:
    """Discriminator hinge loss averaged over discriminator scales (SPADE GANLoss 'hinge')."""
    real, fake = _last(pred_real), _last(pred_fake)
    loss = sum(F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean() for r, f in zip(real, fake))
    return loss / len(real)


def hinge_g_loss(pred_fake) -> torch.Tensor:
    fake = _last(pred_fake)
    return sum(-f.mean() for f in fake) / len(fake)


def feature_matching_loss(pred_fake, pred_real) -> torch.Tensor:
    """L1 between discriminator features of fake and real (all but the last layer), averaged over scales."""
    n = len(pred_fake)
    loss = 0.0
    for pf, pr in zip(pred_fake, pred_real):
        for a, b in zip(pf[:-1], pr[:-1]):
            loss = loss + F.l1_loss(a, b.detach())
    return loss / n


def kld_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def ls_d_loss(pred_real, pred_fake) -> torch.Tensor:
    """LSGAN discriminator loss (pix2pixHD: targets 1 real / 0 fake, halved), summed over scales."""
    real, fake = _last(pred_real), _last(pred_fake)
    return 0.5 * sum(F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))
                     for r, f in zip(real, fake))


def ls_g_loss(pred_fake) -> torch.Tensor:
    return sum(F.mse_loss(f, torch.ones_like(f)) for f in _last(pred_fake))

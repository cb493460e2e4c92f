"""Shared network blocks: SPADE normalization, SPADE residual blocks, spectral norm helpers.

The parameter names follow NVlabs/SPADE so that official ``state_dict`` files load key for key.
Spectral norm is ``torch.nn.utils.spectral_norm`` (keys ``weight_orig``, ``weight_u``, ``weight_v``):
in eval mode it uses the stored ``u``/``v`` with no power iteration, exactly as the official code.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def spectral(module: nn.Module, enabled: bool = True) -> nn.Module:
    if not enabled:
        return module
    return nn.utils.spectral_norm(module)


def freeze_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every spectral-norm reparametrisation by its eval-mode weight, computed once.

    In eval mode torch's hook computes ``weight_orig / dot(u, W v)`` from the stored ``u``, ``v``
    before every forward and keeps the result as an attribute, so an inference-only module holds the
    weights twice. ``remove_spectral_norm`` stores that same tensor (no power iteration in eval) as a
    plain parameter: the forward is bitwise unchanged and the memory halves. For loaded models only;
    training and checkpoint export keep the official parametrisation.
    """
    was_training = module.training
    module.eval()
    for m in module.modules():
        hooks = [h for h in m._forward_pre_hooks.values() if type(h).__name__ == "SpectralNorm"]
        if hooks:
            nn.utils.remove_spectral_norm(m, hooks[0].name)
    module.train(was_training)
    return module


def load_official(module: nn.Module, sd) -> nn.Module:
    """Strict ``load_state_dict`` that accepts checkpoints without BN step counters; returns eval()."""
    sd = dict(sd)
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = v
    module.load_state_dict(sd, strict=True)
    return module.eval()


def param_free_norm(kind: str, channels: int) -> nn.Module:
    """Parameter-free normalization used inside SPADE (``batch`` or ``instance``)."""
    if kind in ("batch", "syncbatch"):
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"unknown SPADE normalization '{kind}'")


class SPADE(nn.Module):
    """Spatially-adaptive normalization: ``norm(x) * (1 + gamma(seg)) + beta(seg)``."""

    def __init__(self, norm_kind: str, norm_nc: int, label_nc: int, nhidden: int = 128, ks: int = 3):
        super().__init__()
        self.param_free_norm = param_free_norm(norm_kind, norm_nc)
        pw = ks // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, ks, padding=pw), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, ks, padding=pw)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, ks, padding=pw)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        if segmap.shape[-2:] != x.shape[-2:]:
            # legacy 'nearest' exactly as the official F.interpolate(mode='nearest')
            segmap = F.interpolate(segmap, size=x.shape[-2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int, semantic_nc: int, norm_kind: str = "batch",
                 use_spectral: bool = True, nhidden: int = 128, ks: int = 3):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = spectral(nn.Conv2d(fin, fmiddle, 3, padding=1), use_spectral)
        self.conv_1 = spectral(nn.Conv2d(fmiddle, fout, 3, padding=1), use_spectral)
        if self.learned_shortcut:
            self.conv_s = spectral(nn.Conv2d(fin, fout, 1, bias=False), use_spectral)
        self.norm_0 = SPADE(norm_kind, fin, semantic_nc, nhidden, ks)
        self.norm_1 = SPADE(norm_kind, fmiddle, semantic_nc, nhidden, ks)
        if self.learned_shortcut:
            self.norm_s = SPADE(norm_kind, fin, semantic_nc, nhidden, ks)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


def nonspade_norm_layer(layer: nn.Conv2d, norm_type: str) -> nn.Module:
    """``get_nonspade_norm_layer`` of the official code: optional spectral norm, then a norm layer.

    ``norm_type`` is e.g. ``spectralinstance``, ``instance``, ``spectralbatch`` or ``spectral``/``none``.
    When a normalization follows, the conv bias is removed (the official code deletes it).
    """
    if norm_type.startswith("spectral"):
        layer = nn.utils.spectral_norm(layer)
        subnorm = norm_type[len("spectral"):]
    else:
        subnorm = norm_type
    if subnorm in ("none", ""):
        return layer
    if getattr(layer, "bias", None) is not None:
        del layer.bias
        layer.register_parameter("bias", None)
    out_ch = layer.weight_orig.shape[0] if hasattr(layer, "weight_orig") else layer.weight.shape[0]
    if subnorm == "instance":
        norm = nn.InstanceNorm2d(out_ch, affine=False)
    elif subnorm in ("batch", "syncbatch"):
        norm = nn.BatchNorm2d(out_ch, affine=True)
    else:
        raise ValueError(f"unknown normalization '{subnorm}'")
    return nn.Sequential(layer, norm)

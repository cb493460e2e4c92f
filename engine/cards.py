"""Model cards and checkpoint inspection.

A model card is ``card.json`` beside the weights: family, network options, label set, native
resolution, capabilities, training data/licence/cost, eval figures and the sha256 of every file.
Checkpoints without a card are inspected: the family and every architecture option are inferred from
key names and tensor shapes, with the official presets resolving what shapes cannot tell apart.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

CARD_NAME = "card.json"
CARD_FORMAT = "semstudio-model-card"
CARD_VERSION = 1
WEIGHT_EXTS = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


class ModelError(ValueError):
    """A model file or card that cannot be used; the message says why."""


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# Official SPADE presets, keyed by generator input channels: what shapes alone cannot tell.
SPADE_PRESETS = {
    184: {"preset": "coco", "labelset": "coco_stuff_182", "instance_edge": True, "num_upsampling_layers": "normal",
          "resolution": [256, 256]},
    151: {"preset": "ade20k", "labelset": "ade20k_150", "instance_edge": False, "num_upsampling_layers": "normal",
          "resolution": [256, 256]},
    36: {"preset": "cityscapes", "labelset": "cityscapes_35", "instance_edge": True, "num_upsampling_layers": "more",
         "resolution": [512, 256]},
    12: {"preset": "camvid", "labelset": "camvid_11", "instance_edge": False, "num_upsampling_layers": "normal",
         "resolution": [256, 192]},
    13: {"preset": "camvid+instances", "labelset": "camvid_11", "instance_edge": True,
         "num_upsampling_layers": "normal", "resolution": [256, 192]},
}


def read_state_dict(path: Path | str) -> dict:
    """Read tensors from a checkpoint safely: safetensors, or ``torch.load(weights_only=True)``.

    Unwraps common containers (``{'state_dict': ...}``, our training checkpoints' ``G``).
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
            raise ModelError(f"{path.name}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle errors, zip errors, unsafe globals
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"{path.name}: not a loadable PyTorch checkpoint ({msg})") from None
    if isinstance(obj, Mapping):
        if obj.get("format") == "semstudio-train-checkpoint":
            return dict(obj["G"])
        for key in ("state_dict", "model", "netG", "G"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        sd = {k[7:] if k.startswith("module.") else k: v for k, v in obj.items() if hasattr(v, "shape")}
        if sd:
            return sd
    raise ModelError(f"{path.name}: holds no tensors (is it a model checkpoint?)")


FAMILY_NAMES = {"spade": "SPADE", "groupdnet": "GroupDNet (SMIS)", "pix2pixhd": "pix2pixHD",
                "photowct": "PhotoWCT"}


def detect_family(sd: Mapping[str, Any]) -> str | None:
    """Which network family a state_dict belongs to, from key names and shapes."""
    from .models import spade

    if spade.is_spade_generator(sd):
        fc = tuple(sd["fc.weight"].shape)
        mlp_in = int(sd["head_0.norm_0.mlp_shared.0.weight"].shape[1])
        # GroupDNet's fc and SPADE mlps are grouped convs (per-class groups): input widths disagree
        return "spade" if len(fc) == 2 or fc[1] == mlp_in else "groupdnet"
    if "model.1.weight" in sd or any(k.startswith("model1_1.") for k in sd):
        return "pix2pixhd"
    if "e1.conv0.weight" in sd:
        return "photowct"
    return None


def inspect_state_dict(sd: Mapping[str, Any], name: str = "checkpoint") -> dict:
    """Family, options, label set and resolution inferred from a generator state_dict."""
    from .models import spade

    family = detect_family(sd)
    if family is not None and family != "spade":
        raise ModelError(f"{name}: a {FAMILY_NAMES[family]} checkpoint; this version loads SPADE generators only")
    if family == "spade":
        nc = int(sd["head_0.norm_0.mlp_shared.0.weight"].shape[1])
        preset = SPADE_PRESETS.get(nc)
        hint = preset["num_upsampling_layers"] if preset else None
        res = preset["resolution"] if preset else None
        cfg = spade.infer_config(sd, hint_upsampling=hint, image_hw=(res[1], res[0]) if res else None)
        if res is None:
            f = 2 ** cfg.n_up
            res = [cfg.latent_hw[1] * f, cfg.latent_hw[0] * f] if cfg.latent_hw else [256, 256]
        out = {"family": "spade", "options": cfg.to_dict(), "labelset": preset["labelset"] if preset else None,
               "instance_edge": preset["instance_edge"] if preset else False,
               "resolution": res, "preset": preset["preset"] if preset else None,
               "capabilities": {"instances": bool(preset and preset["instance_edge"]),
                                "style_image": cfg.use_vae, "per_class_style": False, "text": False,
                                "video": False, "multimodal": cfg.use_vae},
               "num_tensors": len(sd), "num_parameters": int(sum(int(v.numel()) for k, v in sd.items()
                                                                 if not k.endswith("num_batches_tracked")))}
        if preset is None:
            out["warnings"] = [f"{nc} input channels match no known label set; choose one when importing"]
        return out
    raise ModelError(f"{name}: not a recognised generator (known families: spade)")


def inspect_file(path: Path | str) -> dict:
    path = Path(path)
    if path.is_dir():
        return load_card(path)
    info = inspect_state_dict(read_state_dict(path), path.name)
    info["file"] = str(path)
    info["sha256"] = sha256_file(path)
    info["bytes"] = path.stat().st_size
    return info


def make_card(name: str, info: Mapping, files: Mapping[str, Path], **extra) -> dict:
    card = {"format": CARD_FORMAT, "version": CARD_VERSION, "name": name, "title": extra.pop("title", name),
            "family": info["family"], "options": info["options"], "labelset": info["labelset"],
            "instance_edge": info.get("instance_edge", False), "resolution": list(info["resolution"]),
            "capabilities": info.get("capabilities", {}),
            "files": {role: {"path": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size}
                      for role, p in files.items()}}
    card.update(extra)
    return card


def write_card(model_dir: Path | str, card: Mapping) -> Path:
    from .labels.io import atomic_write_bytes

    p = Path(model_dir) / CARD_NAME
    atomic_write_bytes(p, (json.dumps(card, indent=2) + "\n").encode())
    return p


def file_problems(model_dir: Path | str, card: Mapping, verify: bool = True) -> list[tuple[str, str]]:
    """``(state, message)`` for each file of the card that is ``missing`` or (with ``verify``) a
    sha256 ``mismatch``; empty when all is well."""
    model_dir = Path(model_dir)
    out = []
    for role, f in card.get("files", {}).items():
        fp = model_dir / f["path"]
        if not fp.exists():
            out.append(("missing", f"{model_dir.name}: file '{f['path']}' ({role}) named by the card is missing"))
        elif verify and sha256_file(fp) != f["sha256"]:
            out.append(("mismatch", f"{model_dir.name}: '{f['path']}' does not match the sha256 in its card"))
    return out


def read_card(model_dir: Path | str) -> dict:
    """The card's JSON, checked to be a Semantic Studio card; its files are not looked at."""
    model_dir = Path(model_dir)
    p = model_dir / CARD_NAME
    if not p.exists():
        raise ModelError(f"{model_dir}: no {CARD_NAME} (a model folder needs a model card)")
    try:
        card = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{p}: unreadable model card ({e})") from None
    if card.get("format") != CARD_FORMAT:
        raise ModelError(f"{p}: not a Semantic Studio model card")
    return card


def load_card(model_dir: Path | str, verify: bool = False) -> dict:
    """Read a card and check its files exist (and, with ``verify``, their sha256)."""
    card = read_card(model_dir)
    problems = file_problems(model_dir, card, verify)
    if problems:
        raise ModelError(problems[0][1])
    return card

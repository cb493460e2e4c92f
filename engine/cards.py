"""Model cards and checkpoint inspection.

A model card is ``card.json`` beside the weights: family, network options, label set, native
resolution, capabilities, training data/licence/cost, eval figures and the sha256 of every file.
Checkpoints without a card are inspected: the family and every architecture option are inferred from
key names and tensor shapes, with the official presets resolving what shapes cannot tell apart.
"""
from __future__ import annotations

import hashlib
import json
import re
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


from .presets import SPADE as SPADE_PRESETS  # noqa: E402  (re-exported: generator input channels -> preset)


def save_safetensors(tensors: Mapping[str, Any], path: Path | str, metadata: dict | None = None) -> Path:
    """Write torch or numpy ``tensors`` as safetensors, atomically (a temporary file renamed over
    ``path``) and readable like any file the user creates (safetensors itself writes 0600)."""
    import os

    from .labels.io import new_file_mode

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if all(type(v).__module__ == "numpy" for v in tensors.values()):
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    save_file(dict(tensors), str(tmp), metadata=metadata)
    os.chmod(tmp, new_file_mode())
    os.replace(tmp, path)
    return path


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


FAMILY_NAMES = {"spade": "SPADE", "groupdnet": "GroupDNet (SMIS)", "pix2pixhd": "pix2pixHD", "sflow": "S-Flow GAN", "dned": "DNED edge network",
                "segmenter": "segmenter",
                "photowct": "PhotoWCT", "spade_encoder": "SPADE style encoder",
                "smis_encoder": "GroupDNet (SMIS) training encoder", "pix2pixhd_encoder": "pix2pixHD feature encoder"}
GENERATOR_FAMILIES = ("spade", "groupdnet", "pix2pixhd", "sflow")


def detect_family(sd: Mapping[str, Any]) -> str | None:
    """Which network a state_dict belongs to, from key names and shapes."""
    from .models import groupdnet, pix2pixhd, spade

    if groupdnet.is_groupdnet_generator(sd):
        return "groupdnet"
    if spade.is_spade_generator(sd):
        return "spade"
    if pix2pixhd.is_pix2pixhd_generator(sd) or any(k.startswith("model1_1.") for k in sd):
        return "pix2pixhd"
    if pix2pixhd.is_pix2pixhd_encoder(sd):
        return "pix2pixhd_encoder"
    if "fc_mu.weight" in sd and ("layer1.0.weight_orig" in sd or "layer1.0.weight" in sd):
        return "spade_encoder" if sd["fc_mu.weight"].dim() == 2 else "smis_encoder"
    if "e1.conv0.weight" in sd or any(k.startswith("e1.") for k in sd):
        return "photowct"
    return None


def _count(sd: Mapping) -> dict:
    return {"num_tensors": len(sd),
            "num_parameters": int(sum(int(v.numel()) for k, v in sd.items() if not k.endswith("num_batches_tracked")))}


def _capabilities(**kw) -> dict:
    caps = {"instances": False, "style_image": False, "per_class_style": False, "per_instance_style": False,
            "text": False, "video": False, "multimodal": False, "tiling": False}
    caps.update(kw)
    return caps


def _inspect_spade(sd: Mapping) -> dict:
    from .models import spade
    from .presets import spade_official

    nc = int(sd["head_0.norm_0.mlp_shared.0.weight"].shape[1])
    preset = SPADE_PRESETS.get(nc)
    hint = preset["official"]["num_upsampling_layers"] if preset else None
    res = preset["resolution"] if preset else None
    cfg = spade.infer_config(sd, hint_upsampling=hint, image_hw=(res[1], res[0]) if res else None)
    if res is None:
        f = 2 ** cfg.n_up
        res = [cfg.latent_hw[1] * f, cfg.latent_hw[0] * f] if cfg.latent_hw else [256, 256]
    out = {"family": "spade", "role": "generator", "options": cfg.to_dict(),
           "official_options": spade_official(cfg, preset),
           "labelset": preset["labelset"] if preset else None,
           "instance_edge": preset["instance_edge"] if preset else False,
           "resolution": res, "preset": preset["preset"] if preset else None,
           "capabilities": _capabilities(instances=bool(preset and preset["instance_edge"]),
                                         style_image=cfg.use_vae, multimodal=cfg.use_vae), **_count(sd)}
    if preset is None:
        out["warnings"] = [f"{nc} input channels match no known label set; choose one when importing"]
    return out


def _inspect_groupdnet(sd: Mapping) -> dict:
    from .models import groupdnet
    from .presets import GROUPDNET, groupdnet_official

    cfg = groupdnet.infer_config(sd)
    preset = GROUPDNET.get((cfg.variant, cfg.num_classes))
    if preset:
        cfg.num_upsampling_layers = preset["official"]["num_upsampling_layers"]
        h, w = preset["resolution"][1], preset["resolution"][0]
        f = 2 ** cfg.n_up
        cfg.latent_hw = (h // f, w // f)
    hh, ww = cfg.native_hw()
    out = {"family": "groupdnet", "role": "generator", "options": cfg.to_dict(),
           "official_options": groupdnet_official(cfg, preset),
           "labelset": preset["labelset"] if preset else None, "instance_edge": cfg.instance_edge,
           "resolution": [ww, hh], "preset": preset["preset"] if preset else None,
           "capabilities": _capabilities(instances=cfg.instance_edge, per_class_style=True, multimodal=True),
           **_count(sd)}
    if preset is None:
        out["warnings"] = [f"a {cfg.variant}-style GroupDNet with {cfg.num_classes} classes matches no official "
                           "label set; choose one when importing"]
    return out


def _inspect_pix2pixhd(sd: Mapping) -> dict:
    from .models import pix2pixhd
    from .presets import PIX2PIXHD, PIX2PIXHD_LABELSET, pix2pixhd_official

    try:
        cfg = pix2pixhd.infer_config(sd)
    except (KeyError, ValueError, IndexError) as e:
        raise ModelError(f"pix2pixHD-like keys but an incomplete generator ({e})") from None
    preset = PIX2PIXHD.get((cfg.netG, cfg.input_nc))
    if preset and preset["feat"]:
        cfg.feat_num = 3
    out = {"family": "pix2pixhd", "role": "generator", "options": cfg.to_dict(),
           "official_options": pix2pixhd_official(cfg, preset),
           "labelset": PIX2PIXHD_LABELSET if preset else None, "instance_edge": True,
           "resolution": preset["resolution"] if preset else [1024, 512] if cfg.netG == "global" else [2048, 1024],
           "preset": preset["preset"] if preset else None,
           "capabilities": _capabilities(instances=True, per_instance_style=cfg.feat_num > 0,
                                         multimodal=cfg.feat_num > 0, tiling=True), **_count(sd)}
    if preset is None:
        out["warnings"] = [f"{cfg.input_nc} input channels match no official pix2pixHD preset (36 = 35 Cityscapes "
                           "classes + instance edge, 39 = the same + 3 instance features); choose a label set"]
    return out


def _inspect_encoder(sd: Mapping, family: str) -> dict:
    from .models import pix2pixhd, spade

    if family == "pix2pixhd_encoder":
        opts = pix2pixhd.infer_encoder(sd)
    elif family == "spade_encoder":
        opts = spade.infer_encoder_config(sd)
    else:
        opts = {}
    return {"family": family, "role": "encoder", "options": opts, "labelset": None, "resolution": None,
            "capabilities": {}, "notes": ["an encoder: place it beside its generator as *_net_E.pth "
                                          "(or name it in the model card) to use it"], **_count(sd)}


def inspect_state_dict(sd: Mapping[str, Any], name: str = "checkpoint") -> dict:
    """Family, options (ours and the official names), label set and resolution inferred from a state_dict."""
    family = detect_family(sd)
    if family == "spade":
        return _inspect_spade(sd)
    if family == "groupdnet":
        return _inspect_groupdnet(sd)
    if family == "pix2pixhd":
        try:
            return _inspect_pix2pixhd(sd)
        except ModelError as e:
            raise ModelError(f"{name}: {e}") from None
    if family in ("pix2pixhd_encoder", "spade_encoder", "smis_encoder"):
        return _inspect_encoder(sd, family)
    if family == "photowct":
        raise ModelError(f"{name}: a PhotoWCT stylization network, not a generator (it belongs to photo "
                         "restyling, which loads its own weights)")
    sample = ", ".join(sorted(sd)[:3])
    raise ModelError(f"{name}: not a recognised network (keys like {sample}); known: SPADE and GroupDNet "
                     "generators (fc.weight, head_0.*), pix2pixHD generators (model.*, model1_1.*) and their "
                     "encoders")


def sibling(path: Path, role: str) -> Path | None:
    """The official layout keeps a model's networks side by side: ``<epoch>_net_G.pth`` beside
    ``<epoch>_net_E.pth``. Returns the file of ``role`` ('G' or 'E') beside ``path``, if any."""
    m = re.match(r"^(.*_net_)([GE])(\.[A-Za-z]+)$", path.name)
    if not m:
        return None
    cand = path.with_name(f"{m.group(1)}{role}{m.group(3)}")
    return cand if cand.exists() and cand != path else None


def inspect_file(path: Path | str) -> dict:
    """Inspect a checkpoint (or a model folder's card). An encoder is reported together with the
    generator beside it; a generator with its encoder, when one is there."""
    path = Path(path)
    if path.is_dir():
        return load_card(path)
    return inspect_checkpoint(path)[0]


def inspect_checkpoint(path: Path) -> tuple[dict, dict, dict | None]:
    """``(info, generator state_dict, encoder state_dict or None)``, each file read once."""
    sd = read_state_dict(path)
    info = inspect_state_dict(sd, path.name)
    if info.get("role") == "encoder":
        g = sibling(path, "G")
        if g is None:
            info.update(file=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)
            return info, sd, None
        enc_path, enc_sd, path = path, sd, g
        sd = read_state_dict(g)
        info = inspect_state_dict(sd, g.name)
    else:
        enc_path = sibling(path, "E")
        enc_sd = read_state_dict(enc_path) if enc_path is not None else None
    info["file"] = str(path)
    info["sha256"] = sha256_file(path)
    info["bytes"] = path.stat().st_size
    if enc_path is not None:
        enc = inspect_state_dict(enc_sd, enc_path.name)
        expected = {"spade": "spade_encoder", "pix2pixhd": "pix2pixhd_encoder", "groupdnet": "smis_encoder"}
        if enc.get("role") == "encoder" and enc["family"] == expected[info["family"]]:
            info["encoder"] = {"file": str(enc_path), "sha256": sha256_file(enc_path),
                               "bytes": enc_path.stat().st_size, "family": enc["family"], "options": enc["options"]}
            _merge_encoder_options(info, enc)
        else:
            enc_sd = None
    if re.match(r"^.*_net_G\.pth$", path.name) and "official_options" in info:
        info["official_options"]["name"] = path.parent.name   # official layout: checkpoints/<name>/
    return info, sd, enc_sd


def inspected_hashes(info: Mapping) -> dict:
    """The sha256 per role that :func:`inspect_checkpoint` already computed (for :func:`make_card`)."""
    out = {"generator": info["sha256"]}
    if "encoder" in info:
        out["encoder"] = info["encoder"]["sha256"]
    return out


def _merge_encoder_options(info: dict, enc: dict) -> None:
    eo = enc["options"]
    if enc["family"] == "pix2pixhd_encoder":
        from .models.pix2pixhd import Pix2PixHDConfig
        from .presets import PIX2PIXHD, pix2pixhd_official

        info["options"]["feat_num"] = eo["output_nc"]     # the encoder says how many feature channels
        cfg = Pix2PixHDConfig.from_dict(info["options"])
        info["official_options"] = pix2pixhd_official(cfg, PIX2PIXHD.get((cfg.netG, cfg.input_nc)), eo)
        info["capabilities"].update(style_image=True, per_instance_style=True, multimodal=True)
    elif enc["family"] == "spade_encoder":
        info["options"].update(nef=eo["nef"], encoder_layer6=eo["encoder_layer6"])
        info["capabilities"]["style_image"] = info["options"].get("use_vae", False)


def make_card(name: str, info: Mapping, files: Mapping[str, Path], known_sha: Mapping[str, str] | None = None,
              **extra) -> dict:
    """A card for ``files`` (role -> path); ``known_sha`` gives hashes already computed, by role."""
    known_sha = known_sha or {}
    card = {"format": CARD_FORMAT, "version": CARD_VERSION, "name": name, "title": extra.pop("title", name),
            "family": info["family"], "options": info["options"], "labelset": info["labelset"],
            "instance_edge": info.get("instance_edge", False), "resolution": list(info["resolution"]),
            "capabilities": info.get("capabilities", {}),
            "files": {role: {"path": p.name, "sha256": known_sha.get(role) or sha256_file(p),
                             "bytes": p.stat().st_size}
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

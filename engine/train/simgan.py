"""SIMGAN trainer: text-guided edits learnt from captioned, recoloured scenes.

Each sample is a labelled training photo ``x`` at the run's size. Its describable classes get colour
names (:mod:`engine.text.captions`); one or two of them are recoloured in Lab to another basic colour,
giving ``x'`` and the caption pair ``t`` (what ``x`` shows of those classes) and ``t_bar`` (what ``x'``
shows). Captions come in three forms: single-attribute ("the car is red"), two attributes joined by
"and", and the full scene description. (Class, colour) combinations listed in ``heldout`` never appear
in training captions or recolourings; ``eval --text`` asks for them.

Losses (paper eq. 1-4, lambda_a = 1, lambda_c = 10, lambda_ca = 1):
- L_a, LSGAN with the three terms: D(real, matching text) -> 1 (both x with t and x' with t_bar),
  D(real, mismatched text) -> 0 (x with t_bar, x' with t), D(G(x, t_bar), t_bar) -> 0; G wants 1.
- L_c = |G(G(x, t_bar), t) - x|_1, the reconstruction using the text code's mean (no sampling).
- L_ca = KL of the conditioning augmentation, on the forward generation only.
- Our addition, ``lambda_pair`` (0 turns it off): |G(x, t_bar) - x'|_1. The recolouring gives a target
  the paper's caption datasets never had; it shortens CPU training a great deal. ``lambda_pair_region``
  adds the same L1 over the recoloured pixels only (per-sample mean), so ignoring the text costs as
  much for a small car as for the sky.
- Our warm-up, ``pair_warmup`` steps (0: none): the pair terms alone, the text code the conditioning
  augmentation's mean, no KL and no discriminator (:meth:`SimganTrainer.warmup_step`); then
  ``d_warmup`` steps (0: none) train the discriminator alone on the paper's three terms against the
  warmed-up generator, so that its first gradients to G are informed rather than a fresh network's
  noise; the paper's losses follow.

Adam 2e-4 (beta1 0.5), the learning rate halved every ``lr_halve_epochs`` epochs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..models.simgan import SimganConfig, SimganDiscriminator, SimganGenerator, kl_ca
from ..text import captions as cap
from .trainer import GANTrainer, StepSampler

# curriculum order: easy, large regions and well separated colours first
CURRICULUM_CLASSES = ["sky", "road", "building", "tree", "car", "pavement", "fence"]
CURRICULUM_COLOURS = ["yellow", "blue", "red", "green", "white", "black", "orange", "purple", "pink", "brown", "grey"]

# (class, colour) combinations kept out of training for the CamVid preset (eval --text asks for them)
HELDOUT_CAMVID = [["car", "red"], ["sky", "orange"], ["building", "blue"], ["tree", "yellow"],
                  ["road", "brown"], ["pavement", "pink"], ["fence", "purple"]]


def _images(arrays: list, device) -> torch.Tensor:
    """(H, W, 3) uint8 images -> an (N, 3, H, W) batch in [-1, 1] on ``device``."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(device)


def region_l1(fake: torch.Tensor, x: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Mean |fake - x2| over the pixels the recolouring changed (where x2 differs from x), averaged per
    sample, so that a small car weighs as much as the sky; samples with nothing changed count 0.
    Over the whole image (``lambda_pair``) a text-blind identity costs only the region's share of the
    pixels, which is how run v2 settled on ignoring the text."""
    m = ((x2 - x).abs().amax(1, keepdim=True) > 1e-6).to(fake.dtype)
    area = m.sum((1, 2, 3))
    per = ((fake - x2).abs() * m).sum((1, 2, 3)) / (3.0 * area.clamp(min=1.0))
    return per.sum() / x.shape[0]


class SimganTrainer(GANTrainer):
    family, title = "simgan", "SIMGAN"

    def build(self) -> None:
        cfg = self.cfg
        self.check_size(4, "(two stride-2 stages)")
        self.mcfg = SimganConfig(ngf=cfg.ngf, ndf=cfg.ndf, ca_dim=cfg.ca_dim,
                                 text_every_unit=cfg.text_every_unit)
        self.G = SimganGenerator(self.mcfg).to(self.device)
        self.D = SimganDiscriminator(self.mcfg).to(self.device)
        self.heldout = {tuple(p) for p in (cfg.heldout if cfg.heldout is not None else HELDOUT_CAMVID)}
        self._enc = None
        self.vgg = None                       # SIMGAN has no perceptual loss

    @property
    def encoder(self):
        if self._enc is None:
            from ..text.encoder import text_encoder

            self._enc = text_encoder()
            self._enc.load_cache(self.run_dir / "text_cache.npz")
        return self._enc

    def save(self):
        p = super().save()
        if self.dist.is_main and self._enc is not None:
            self._enc.save_cache(self.run_dir / "text_cache.npz")
        return p

    # ---- data --------------------------------------------------------------------------------
    def stage(self) -> tuple[set, list]:
        """Classes and colours open at this step. With ``curriculum`` > 0 the task starts with 3 classes
        and 4 colours and widens linearly to all of them: with every class and colour at once the
        text-blind optimum is the identity, a saddle the generator does not leave (observed)."""
        f = 1.0 if self.cfg.curriculum <= 0 else min(1.0, self.step / self.cfg.curriculum)
        classes = set(CURRICULUM_CLASSES[:3 + int(round(f * (len(CURRICULUM_CLASSES) - 3)))])
        colours = CURRICULUM_COLOURS[:4 + int(round(f * (len(CURRICULUM_COLOURS) - 4)))]
        if f >= 1.0:
            return set(self.ls.names()), list(cap.COLOURS)
        return classes, colours

    def colours_for(self, cls: str, current: str) -> list[str]:
        open_colours = self.stage()[1]
        return [k for k in cap.COLOURS if k != current and (cls, k) not in self.heldout and k in open_colours]

    def make_pair(self, img: np.ndarray, lab: np.ndarray, rng: np.random.Generator):
        """(x, x', t, t_bar) for one training crop."""
        cols = cap.scene_colours(img, lab, self.ls)
        cols = {c: rc for c, rc in cols.items() if (c, rc.name) not in self.heldout}
        open_classes = self.stage()[0]
        names = [c for c in cols if c in open_classes and self.colours_for(c, cols[c].name)]
        if not names:
            return img, img, "a street scene", "a street scene"
        k = 1 if len(names) == 1 or rng.random() < 0.65 else 2
        pick = [names[i] for i in rng.choice(len(names), k, replace=False)]
        x2 = img
        targets = {}
        for c in pick:
            colour = str(rng.choice(self.colours_for(c, cols[c].name)))
            x2 = cap.recolour(x2, lab == self.ls.index_of(c), colour, rng)
            targets[c] = colour
        form = rng.random()
        if form < 0.8:
            t = " and ".join(cap.attribute_caption(c, cols[c].name) for c in pick)
            tb = " and ".join(cap.attribute_caption(c, targets[c]) for c in pick)
        else:                                           # full scene descriptions of x and x'
            after = dict(cols)
            new = cap.scene_colours(x2, lab, self.ls, classes=pick)
            after.update(new)
            if any((c, rc.name) in self.heldout for c, rc in new.items()):
                return self.make_pair(img, lab, rng)
            order = [names[i] for i in rng.permutation(len(names))]
            t = ", ".join(f"{cols[c].name} {cap._noun(c, False)[0]}" for c in order)
            tb = ", ".join(f"{after[c].name} {cap._noun(c, False)[0]}" for c in order)
        return img, x2, t, tb

    def batch_for(self, step: int):
        data = self.load_data()
        sampler = StepSampler(len(data), self.cfg.batch, self.cfg.seed, self.dist.rank, self.dist.world)
        idx, rng = sampler.indices(step)
        xs, x2s, ts, tbs = [], [], [], []
        for i in idx:
            img, lab, _ = data.get_with_instances(i, self.cfg.size, rng, self.cfg.scale_aug, self.cfg.flip)
            x, x2, t, tb = self.make_pair(img, lab, rng)
            xs.append(x)
            x2s.append(x2)
            ts.append(t)
            tbs.append(tb)
        emb = self.encoder.encode(ts + tbs)
        n = len(ts)
        e = torch.from_numpy(emb).to(self.device)
        return _images(xs, self.device), _images(x2s, self.device), e[:n], e[n:]

    # ---- one iteration -----------------------------------------------------------------------
    def set_lr(self) -> None:
        """Halved every ``lr_halve_epochs`` epochs (the paper: every 50 of 600)."""
        per_epoch = max(1, len(self.load_data()) // (self.cfg.batch * self.dist.world))
        f = 0.5 ** (self.step // max(1, int(self.cfg.lr_halve_epochs * per_epoch)))
        if self.step < self.cfg.pair_warmup and self.cfg.pair_warmup_lr > 0:
            f *= self.cfg.pair_warmup_lr / self.cfg.lr
        for opt, base in zip((self.opt_g, self.opt_d), self.base_lrs):
            for g in opt.param_groups:
                g["lr"] = base * f

    def train_step(self, x, x2, t, tb) -> dict[str, float]:
        cfg = self.cfg
        self.set_lr()
        if self.step < cfg.pair_warmup:
            return self.warmup_step(x, x2, tb)
        if self.step < cfg.pair_warmup + cfg.d_warmup:
            self.G.eval()                # the generator as it stands: no batch-norm statistics update
            with torch.no_grad(), self.autocast():
                fake, _mu, _logvar = self.G(x, tb, sample=True)
            self.G.train()
            return self.report({}, self.d_step(x, x2, t, tb, fake))
        for p in self.D.parameters():
            p.requires_grad_(False)
        with self.autocast():
            fake, mu, logvar = self.G_t(x, tb, sample=True)
            rec, _, _ = self.G_t(fake, t, sample=False)
            losses = {"GAN": ((self.D(fake, tb) - 1) ** 2).mean(),
                      "Cycle": F.l1_loss(rec, x) * cfg.lambda_cycle,
                      "CA_KL": kl_ca(mu, logvar) * cfg.lambda_ca}
            if cfg.lambda_pair > 0:
                losses["Pair"] = F.l1_loss(fake, x2) * cfg.lambda_pair
            if cfg.lambda_pair_region > 0:
                losses["PairRegion"] = region_l1(fake, x, x2) * cfg.lambda_pair_region
            g_loss = sum(losses.values())
        self.backward_step(g_loss, self.opt_g, 0)
        for p in self.D.parameters():
            p.requires_grad_(True)
        return self.report(losses, self.d_step(x, x2, t, tb, fake))

    def d_step(self, x, x2, t, tb, fake) -> torch.Tensor:
        """One discriminator update on the LSGAN's three terms; returns its loss."""
        with self.autocast():
            n = x.shape[0]
            pred = self.D_t(torch.cat([x, x2, x, x2, fake.detach()]), torch.cat([t, tb, tb, t, tb]))
            real, mis, fk = pred[:2 * n], pred[2 * n:4 * n], pred[4 * n:]
            d_loss = ((real - 1) ** 2).mean() + (mis ** 2).mean() + (fk ** 2).mean()
        self.backward_step(d_loss, self.opt_d, 1)
        return d_loss

    def warmup_step(self, x, x2, tb) -> dict[str, float]:
        """A supervised step on the recoloured targets alone (``pair_warmup``): the generator learns
        where each class is and what a colour word asks for before the GAN and cycle terms, which the
        identity satisfies at no cost, join in. The text code is the conditioning augmentation's mean,
        without its KL: with the sampled code and the KL from the start (run v5, 3700 steps) the KL
        widened the noise while the colour words were still being learnt, and edits came out in one
        generic tint. The discriminator does not train. Both pair terms take part, at their weights
        or 1 where a weight is 0 (the warm-up has nothing else to learn from)."""
        cfg = self.cfg
        with self.autocast():
            fake, _mu, _logvar = self.G_t(x, tb, sample=False)
            losses = {"Pair": F.l1_loss(fake, x2) * max(cfg.lambda_pair, 1.0),
                      "PairRegion": region_l1(fake, x, x2) * max(cfg.lambda_pair_region, 1.0)}
        self.backward_step(sum(losses.values()), self.opt_g, 0)
        return self.report(losses, torch.zeros((), device=x.device))

    def fake(self, x, x2, t, tb):
        return self.G(x, tb, sample=False)[0]

    def fixed_pairs(self, n: int, seed: int) -> list:
        """(x, x', t, t_bar) for ``n`` training images spread over the split, unaugmented, drawn with
        ``seed``: the same pairs at every step, for the logs and sample grids."""
        data = self.load_data()
        rng = np.random.default_rng(seed)
        idx = np.linspace(0, len(data) - 1, min(n, len(data))).astype(int)
        return [self.make_pair(*data.get_with_instances(int(i), self.cfg.size)[:2], rng) for i in idx]

    def text_sensitivity(self, n: int = 8) -> float:
        """How much the generator listens to the text: the mean |G(x, t_bar) - G(x, t)| (0..255 scale, CA
        mean as code, eval mode) over ``n`` fixed training pairs. 0 means the text is ignored - the
        collapse seen when the CA KL drives the text code to the prior and the edit becomes the identity."""
        xs, _x2s, ts, tbs = zip(*self.fixed_pairs(n, 54321))
        e = torch.from_numpy(self.encoder.encode(list(ts + tbs))).to(self.device)
        x = _images(xs, self.device)
        was = self.G.training
        self.G.eval()
        with torch.no_grad():
            gap = (self.G(x, e[len(ts):], sample=False)[0] - self.G(x, e[:len(ts)], sample=False)[0]).abs().mean()
        self.G.train(was)
        return float(gap) * 127.5

    def sample_grid(self, n: int = 4) -> Image.Image:
        """Rows of source | recoloured target | edit, for fixed samples; logs the text sensitivity."""
        gap = self.text_sensitivity()
        self.log(f"step {self.step}: text sensitivity {gap:.3f} (mean |G(x, target text) - G(x, source text)|, "
                 "0..255)" + ("; the generator ignores the text" if gap < 0.05 else ""))
        rows = []
        self.G.eval()
        for x, x2, _t, tb in self.fixed_pairs(n, 12345):
            e = torch.from_numpy(self.encoder.encode([tb])).to(self.device)
            xt = _images([x], self.device)
            with torch.no_grad():
                y = self.G(xt, e, sample=False)[0]
            yy = ((y[0].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
            rows.append(np.concatenate([x, x2, yy], 1))
        self.G.train()
        return Image.fromarray(np.concatenate(rows, 0))

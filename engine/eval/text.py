"""``semstudio eval --text``: text-guided edits on a labelled split, with held-out prompt combinations.

For every image of the split (at ``size``) and every (class, colour) combination the model never saw
in training (the card's ``text.heldout``) whose class covers at least 2% of the image and is not already
that colour, the prompt "the CLASS is COLOUR" is applied, and:

- attribute accuracy: the named colour (median Lab, :func:`engine.text.captions.region_colour`) of the
  target class's ground-truth region in the edit equals the prompt's colour;
- preservation: SSIM (Gaussian window, sigma 1.5, on luma) between source and edit, averaged over the
  pixels *outside* the target class;
- FD-VGG of all edits against the split's real photos (VGG19 pool5, as ``semstudio eval``).

Two rows: the model alone (whole image), and the product path with a region limit from the bundled
segmenter's auto-labels (``edit --mask-class``), where the edit can only leak outside the true class
where the segmenter is wrong. A third row gives the same figures on seen combinations for comparison.
"""
from __future__ import annotations

import numpy as np

from ..text import captions as cap


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM of two RGB uint8 images on luma (Wang et al. 2004 constants)."""
    import cv2

    def luma(x):
        x = x.astype(np.float64)
        return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]

    x, y = luma(a), luma(b)
    blur = lambda z: cv2.GaussianBlur(z, (0, 0), sigma)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def evaluate_text(editor, data_root: str, split: str = "val", size=(256, 192), limit: int | None = None,
                  progress=None, seen_per_image: int = 1) -> dict:
    import torch

    from ..models.segmenter import load_segmenter, segment_photo
    from ..models.vgg import VGG19Features
    from ..text.edit import edit
    from ..train.datasets import PairedDataset
    from .protocol import frechet_distance, gaussian

    ls = editor.labelset
    data = PairedDataset(data_root, ls, split, limit=limit, log=lambda m: None)
    heldout = [tuple(p) for p in editor.heldout]
    if not heldout:
        raise ValueError(f"{editor.name}: its card lists no held-out prompt combinations")
    seg = load_segmenter()
    vgg = VGG19Features("relu5_1")

    def desc(img):
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(127.5).sub(1)
        with torch.no_grad():
            return vgg.pool5(x)[0].double().numpy()

    rng = np.random.default_rng(0)
    rows = {k: {"n": 0, "hits": 0, "ssim": [], "per_pair": {}} for k in ("heldout", "heldout_region", "seen")}
    real_f, edit_f = [], []
    for i in range(len(data)):
        img, lab = data.get(i, tuple(size))
        real_f.append(desc(img))
        cols = cap.scene_colours(img, lab, ls)
        auto = None
        jobs = [("heldout", c, k) for c, k in heldout if c in cols and cols[c].name != k]
        seen = [(c, k) for c in cols for k in cap.COLOURS if (c, k) not in heldout and k != cols[c].name]
        for j in rng.choice(len(seen), min(seen_per_image, len(seen)), replace=False) if seen else []:
            jobs.append(("seen", *seen[int(j)]))
        for kind, c, k in jobs:
            prompt = cap.attribute_caption(c, k)
            truth = lab == ls.index_of(c)
            variants = [(kind, None)]
            if kind == "heldout":
                if auto is None:
                    auto = segment_photo(seg, img)
                variants.append(("heldout_region", auto == ls.index_of(c)))
            for row, mask in variants:
                out = edit(editor, img, prompt, mask=mask, seed=i).image
                rc = cap.region_colour(out, truth)
                hit = rc is not None and rc.name == k
                r = rows[row]
                r["n"] += 1
                r["hits"] += int(hit)
                r["ssim"].append(float(ssim_map(img, out)[~truth].mean()))
                pp = r["per_pair"].setdefault(f"{c}:{k}", [0, 0])
                pp[0] += int(hit)
                pp[1] += 1
                if row == "heldout":
                    edit_f.append(desc(out))
        if progress:
            progress("text edits", i + 1, len(data))
    fd = (frechet_distance(*gaussian(np.stack(edit_f)), *gaussian(np.stack(real_f)))
          if len(edit_f) > 1 and len(real_f) > 1 else None)
    out = {"model": editor.name, "data": str(data_root).rstrip("/").split("/")[-1], "split": split,
           "images": len(data), "size": list(size), "fd_vgg_heldout_edits": None if fd is None else round(fd, 1)}
    for k, r in rows.items():
        out[k] = {"prompts": r["n"], "attribute_accuracy": round(r["hits"] / max(r["n"], 1), 4),
                  "ssim_outside_target": round(float(np.mean(r["ssim"])) if r["ssim"] else float("nan"), 4),
                  "per_pair": {p: f"{h}/{n}" for p, (h, n) in sorted(r["per_pair"].items())}}
    return out


def markdown_text(res: dict) -> str:
    lines = [f"Text edits on {res['data']} `{res['split']}` ({res['images']} images at "
             f"{res['size'][0]}x{res['size'][1]}), model {res['model']}.", "",
             "| prompts | edit | n | attribute accuracy | SSIM outside target class |", "|---|---|---|---|---|"]
    names = {"heldout": ("held-out combinations", "whole image"),
             "heldout_region": ("held-out combinations", "region limit (auto-labels)"),
             "seen": ("seen combinations", "whole image")}
    for k, (p, e) in names.items():
        r = res[k]
        lines.append(f"| {p} | {e} | {r['prompts']} | {r['attribute_accuracy']:.1%} | {r['ssim_outside_target']:.3f} |")
    lines += ["", f"FD-VGG of the held-out whole-image edits against the real photos: {res['fd_vgg_heldout_edits']}",
              "", "Per held-out pair (whole image): " + ", ".join(f"{p} {v}" for p, v in res["heldout"]["per_pair"].items())]
    return "\n".join(lines) + "\n"

"""Make docs/text/edits.png: text-guided edits of CamVid val photos by the bundled SIMGAN model.

    python tools/text_examples.py [-m MODEL] [--images 0016E5_07959.png 0016E5_08079.png]

Columns per row: source | three prompts (whole image) | the same prompt limited to its class (auto-labels)
| an interpolation between two prompts at alpha 0, 0.5, 1. Prompts include held-out combinations.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["the car is red", "the sky is orange", "the trees are yellow"]
INTERP = ("the road is blue", "the road is green")


def label(img: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, im.width, 13], fill=(0, 0, 0))
    d.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(im)


def main(argv=None) -> int:
    from engine.text.captions import parse_prompt
    from engine.text.edit import class_mask, edit, load_editor

    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model")
    ap.add_argument("--images", nargs="*", default=["0016E5_07959.png", "0016E5_08079.png"])
    ap.add_argument("--out", default=str(ROOT / "docs" / "text"))
    a = ap.parse_args(argv)
    ed = load_editor(a.model)
    data = ROOT.parent / "shared" / "datasets" / "camvid_segnet" / "val"
    held = {tuple(p) for p in ed.heldout}
    rows = []
    for n in a.images:
        img = np.asarray(Image.open(data / n).convert("RGB").resize((256, 192), Image.BILINEAR))
        cols = [label(img, "source")]
        for p in PROMPTS:
            tag = " (held out)" if any(tuple(x) in held for x in parse_prompt(p, ed.labelset).attributes) else ""
            cols.append(label(edit(ed, img, p, seed=0).image, p + tag))
        cls = parse_prompt(PROMPTS[0], ed.labelset).classes[0]
        m, _ = class_mask(ed, img, cls)
        cols.append(label(edit(ed, img, PROMPTS[0], mask=m, seed=0).image, f"{PROMPTS[0]}, {cls} only"))
        for al in (0.0, 0.5, 1.0):
            r = edit(ed, img, INTERP[0], prompt2=INTERP[1], alpha=al, sample=False)
            cols.append(label(r.image, f"blue -> green road, {al:g}"))
        rows.append(np.concatenate(cols, 1))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(out / "edits.png")
    (out / "README.md").write_text(
        f"Text edits by {ed.name} on CamVid val at 256x192. Columns: source | " + " | ".join(PROMPTS)
        + f" | '{PROMPTS[0]}' limited to its class (bundled segmenter's auto-labels) | interpolation "
        f"'{INTERP[0]}' -> '{INTERP[1]}' at 0, 0.5, 1. Held-out (never trained) combinations: "
        + ", ".join(f"{c} {k}" for c, k in sorted(held)) + ".\nMade by tools/text_examples.py. CamVid: research "
        "and non-commercial use only.\n")
    print(f"wrote {out}/edits.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Make docs/video/: an animated GIF and a still strip of CamVid val frames rendered per frame, stabilised,
and (when given) by an S-Flow model with the frames' edges.

    python tools/video_examples.py [--sflow MODEL_DIR] [--frames 24] [--start 0]

Rows of the GIF (top to bottom per frame): real frame | labels | SPADE per frame | SPADE stabilised (0.6)
[| S-Flow | S-Flow stabilised]. The strip shows every 4th frame of the same columns.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from engine.labels.io import read_label_png
    from engine.registry import StyleControls, generate, load_model
    from engine.video.temporal import Stabilizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--sflow")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "video"))
    a = ap.parse_args(argv)
    data = ROOT.parent / "shared" / "datasets" / "camvid_segnet"
    names = sorted(p.name for p in (data / "val").iterdir())[a.start:a.start + a.frames]
    size = (256, 192)
    spade = load_model("camvid_spade_demo")
    models = [("SPADE", spade, False)]
    if a.sflow:
        models.append(("S-Flow", load_model(a.sflow), True))
    pal = spade.labelset.palette()
    stabs = {name: Stabilizer(0.6) for name, _, _ in models}
    rows = []
    for n in names:
        frame = np.asarray(Image.open(data / "val" / n).convert("RGB").resize(size, Image.BILINEAR))
        lab = read_label_png(data / "valannot" / n, spade.labelset)
        cols = [frame, np.asarray(Image.fromarray(pal[lab]).resize(size, Image.NEAREST))]
        for name, m, edges in models:
            img = generate(m, lab, seed=0, size_wh=size, controls=StyleControls(frame=frame) if edges else None)
            cols += [img, stabs[name].step(img, frame)]
        rows.append(np.concatenate(cols, 1))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = [Image.fromarray(r).resize((r.shape[1] // 2, r.shape[0] // 2), Image.BILINEAR) for r in rows]
    frames[0].save(out / "camvid_val.gif", save_all=True, append_images=frames[1:], duration=1000 // 15, loop=0)
    strip = Image.fromarray(np.concatenate(rows[::4], 0))
    strip.resize((strip.width * 3 // 4, strip.height * 3 // 4), Image.BILINEAR).save(out / "camvid_val_strip.png")
    cols = "frame | labels | " + " | ".join(f"{n} per frame | {n} stabilised 0.6" for n, _, _ in models)
    (out / "README.md").write_text(f"CamVid val frames {a.start}..{a.start + len(names) - 1} (15 Hz), columns: {cols}.\n"
                                   "Made by tools/video_examples.py. CamVid: research and non-commercial use only.\n")
    print(f"wrote {out}/camvid_val.gif and camvid_val_strip.png ({cols})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

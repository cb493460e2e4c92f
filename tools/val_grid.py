"""Render labels | real photo | generated for held-out CamVid val frames to docs/val_samples.png.

    .venv/bin/python tools/val_grid.py ../shared/datasets/camvid_segnet [OUT.png]
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.labels import colorize  # noqa: E402
from engine.registry import generate, load_model  # noqa: E402
from engine.train.datasets import PairedDataset  # noqa: E402


def main() -> int:
    data = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "val_samples.png"
    model = load_model(None)
    val = PairedDataset(data, model.labelset, "val", log=lambda m: None)
    rows = []
    for i in (5, 35, 65, 95):
        img, lab = val.get(i, model.resolution)
        gen = generate(model, lab)
        rows.append(np.concatenate([colorize(lab, model.labelset), img, gen], 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

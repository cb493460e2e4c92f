"""Before/after strips of photorealistic stylization for three WCT2 example pairs, to docs/stylize/:
content | style | PhotoWCT (region-wise, no smoothing) | + exact smoothing | + fast smoothing.

    .venv/bin/python tools/stylize_examples.py ../shared/datasets/photo_style_examples_wct2 [MODEL]
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.models.photowct import load_photowct  # noqa: E402
from engine.stylize import smooth  # noqa: E402
from engine.stylize.pipeline import PhotoWCT, stylize  # noqa: E402

PAIRS = ("in00", "in14", "in17")
PANEL_W = 320


def _load(p: Path, w: int | None = None) -> np.ndarray:
    with Image.open(p) as im:
        im = im.convert("RGB")
        if w:
            im = im.resize((w, round(im.height * w / im.width)), Image.BICUBIC)
        return np.asarray(im)


def _panel(a: np.ndarray, h: int) -> np.ndarray:
    im = Image.fromarray(a)
    return np.asarray(im.resize((round(im.width * h / im.height), h), Image.BICUBIC))


def main() -> int:
    data = Path(sys.argv[1])
    nets, card = load_photowct(sys.argv[2] if len(sys.argv) > 2 else None)
    wct = PhotoWCT(nets)
    out_dir = ROOT / "docs" / "stylize"
    out_dir.mkdir(parents=True, exist_ok=True)
    log = {}
    for name in PAIRS:
        cont = _load(data / "content" / f"{name}.png", 512)
        style = _load(data / "style" / f"{name}.png")
        cm = _load(data / "content_segment" / f"{name}.png", 512)
        cm = np.asarray(Image.fromarray(cm).resize((cont.shape[1], cont.shape[0]), Image.NEAREST))
        sm = _load(data / "style_segment" / f"{name}.png")
        sm = np.asarray(Image.fromarray(sm).resize((style.shape[1], style.shape[0]), Image.NEAREST))
        t0 = time.perf_counter()
        res = stylize(wct, cont, style, cm, sm, smooth="exact")
        t_exact = time.perf_counter() - t0
        fast = smooth.smooth_fast(res.stylized, cont)
        h = cont.shape[0] * PANEL_W // cont.shape[1]
        strip = np.concatenate([_panel(x, h) for x in (cont, style, res.stylized, res.image, fast)], 1)
        Image.fromarray(strip).save(out_dir / f"{name}.png", optimize=True)
        log[name] = {"content": f"{cont.shape[1]}x{cont.shape[0]}", "seconds_with_exact_smoothing": round(t_exact, 2),
                     **{k: v for k, v in res.info.items() if k != "smooth"}}
        print(name, log[name])
    (out_dir / "examples.json").write_text(json.dumps({"model": card.get("name"), "pairs": log}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

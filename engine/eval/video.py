"""Video metrics on a consecutive labelled split (CamVid val: 101 frames at 15 Hz).

For each mode (per-frame generation; stabilised with the RGB frames' flow; stabilised with the label
maps' flow; later S-Flow) the label frames are rendered in order and scored by:

- **warping error** (Lai et al. 2018): for each consecutive pair, the mean over non-occluded pixels of
  the squared RGB difference (values in [0, 1], summed over channels) between output t and output t-1
  warped onto t, with the flow and the occlusion mask computed on the *real* frames (DIS, forward-backward
  test); averaged over the pairs;
- **FD-VGG** against the real frames (see :mod:`engine.eval.protocol`);
- the segmenter's **mIoU**: over the whole split, and the mean of the per-frame mIoUs;
- frames per second of the mode (generation plus stabilisation; each frame is generated once and the same
  outputs are stabilised per mode, as the generator is deterministic for the seed).
"""
from __future__ import annotations

import time

import numpy as np

from ..video.flow import flow_pair, warping_error
from ..video.temporal import DEFAULT_STRENGTH, Stabilizer
from .protocol import Evaluator, frechet_distance, gaussian
from .segmentation import Confusion

MODES = ("per-frame", "stabilised (RGB flow)", "stabilised (label flow)")


def evaluate_video(ev: Evaluator, model, size_wh: tuple[int, int] | None = None,
                   strength: float = DEFAULT_STRENGTH, modes=MODES, seed: int = 0) -> dict:
    """The table for one model: {frames, size, rows: [{mode, warping_error, fd_vgg, miou, ...}]}."""
    from ..registry import StyleControls, generate

    ls = model.labelset
    size = tuple(size_wh or model.resolution)
    val = ev.data(ls)
    n = len(val)
    if n < 2:
        raise ValueError("video metrics need at least two consecutive frames")
    frames, labs = zip(*(val.get(i, size) for i in range(n)))
    pal = ls.palette()
    t0 = time.perf_counter()
    pairs = []
    for t in range(1, n):
        pairs.append(flow_pair(frames[t], frames[t - 1]))
        ev._tick("real-frame flow", t, n - 1)
    flow_s = (time.perf_counter() - t0) / (n - 1)
    real_feats = np.stack([ev.descriptor(f) for f in frames])
    oracle = Confusion(ev.seg.cfg.num_classes, ls.void_index)
    for f, lab in zip(frames, labs):
        oracle.add(ev.segment(f), lab)
    names = ls.names()[: ev.seg.cfg.num_classes]
    # the generator is deterministic for a seed: render once, stabilise the same outputs per mode
    raw, gen_secs = [], 0.0
    for t in range(n):
        t1 = time.perf_counter()
        ctl = StyleControls(frame=frames[t]) if model.family == "sflow" else None    # CG2real: edges
        raw.append(generate(model, labs[t], seed=seed, size_wh=size, controls=ctl))
        gen_secs += time.perf_counter() - t1
        ev._tick(f"{model.name} frames", t + 1, n)
    rows = []
    for mode in modes:
        if mode == "per-frame":
            stab, guide = None, None
        elif mode == "stabilised (RGB flow)":
            stab, guide = Stabilizer(strength), frames
        elif mode == "stabilised (label flow)":
            stab, guide = Stabilizer(strength), [pal[lab] for lab in labs]
        else:
            raise ValueError(f"unknown video mode '{mode}'")
        outs, secs = [], gen_secs
        for t in range(n):
            img = raw[t]
            if stab is not None:
                t1 = time.perf_counter()
                img = stab.step(img, guide[t])
                secs += time.perf_counter() - t1
            outs.append(img)
        werr = [warping_error(outs[t], outs[t - 1], *pairs[t - 1]) for t in range(1, n)]
        conf = Confusion(ev.seg.cfg.num_classes, ls.void_index)
        per_frame = []
        feats = []
        for img, lab in zip(outs, labs):
            pred = ev.segment(img)
            conf.add(pred, lab)
            one = Confusion(ev.seg.cfg.num_classes, ls.void_index)
            one.add(pred, lab)
            per_frame.append(one.miou())
            feats.append(ev.descriptor(img))
        s = conf.summary(names)
        rows.append({"mode": mode, "strength": None if stab is None else strength,
                     "warping_error": round(float(np.mean(werr)), 6),
                     "fd_vgg": round(frechet_distance(*gaussian(np.stack(feats)), *gaussian(real_feats)), 3),
                     "miou": s["miou"], "pixel_accuracy": s["pixel_accuracy"],
                     "mean_frame_miou": round(float(np.mean(per_frame)), 4),
                     "frames_per_second": round(n / secs, 2)})
    base = rows[0]
    for r in rows:
        r["warping_error_vs_per_frame"] = round(r["warping_error"] / base["warping_error"] - 1.0, 4) \
            if base["warping_error"] > 0 else None
    real_warp = float(np.mean([warping_error(frames[t], frames[t - 1], *pairs[t - 1]) for t in range(1, n)]))
    return {"model": model.name, "frames": n, "size": list(size), "flow_seconds_per_frame": round(flow_s, 4),
            "oracle_miou": oracle.summary(names)["miou"], "real_frames_warping_error": round(real_warp, 6),
            "rows": rows}


def compare_to_baseline(results: list[dict]) -> list[dict]:
    """Every row of every model against the first model's per-frame row (the baseline): relative
    warping error, FD-VGG and mIoU (e.g. S-Flow + stabilisation against per-frame SPADE)."""
    if not results:
        return []
    base = results[0]["rows"][0]
    out = []
    for res in results:
        for r in res["rows"]:
            out.append({"model": res["model"], "mode": r["mode"], "strength": r["strength"],
                        "warping_error_change": round(r["warping_error"] / base["warping_error"] - 1, 4),
                        "fd_vgg_change": round(r["fd_vgg"] / base["fd_vgg"] - 1, 4),
                        "miou_change": round(r["miou"] / base["miou"] - 1, 4) if base["miou"] else None})
    return out


def markdown_comparison(results: list[dict]) -> str:
    base = results[0]
    lines = [f"Against {base['model']} per-frame (the baseline):", "",
             "| model | mode | warping error | FD-VGG | mIoU |", "|---|---|---|---|---|"]
    for c in compare_to_baseline(results):
        mode = c["mode"] if c["strength"] is None else f"{c['mode']} s={c['strength']:g}"
        miou = "" if c["miou_change"] is None else f"{100 * c['miou_change']:+.1f}%"
        lines.append(f"| {c['model']} | {mode} | {100 * c['warping_error_change']:+.1f}% | "
                     f"{100 * c['fd_vgg_change']:+.1f}% | {miou} |")
    return "\n".join(lines) + "\n"


def markdown_video(res: dict) -> str:
    lines = [f"Video metrics: {res['model']} on {res['frames']} consecutive frames at "
             f"{res['size'][0]}x{res['size'][1]} (oracle mIoU {res['oracle_miou']:.3f}; the real frames' own "
             f"warping error {res['real_frames_warping_error']:.5f})", "",
             "| mode | warping error | vs per-frame | FD-VGG | mIoU | mean frame mIoU | frames/s |",
             "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        rel = r["warping_error_vs_per_frame"]
        mode = r["mode"] if r["strength"] is None else f"{r['mode']} s={r['strength']:g}"
        rel_s = "" if rel is None else f"{100 * rel:+.1f}%"
        lines.append(f"| {mode} | {r['warping_error']:.5f} | {rel_s} | {r['fd_vgg']:.1f} | "
                     f"{r['miou']:.3f} | {r['mean_frame_miou']:.3f} | {r['frames_per_second']:.1f} |")
    return "\n".join(lines) + "\n"

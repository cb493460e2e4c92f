"""``semstudio bench [--json]``: measured speed figures with their targets and same-run baselines.

- ``brush_dab_ms``: one hard-edged dab on a 4096x2048 label layer, including undo-tile capture and the
  LUT recolour of its bounding box (what the canvas does per dab). Baseline, measured in the same run:
  recolouring the whole layer per dab (the approach that makes large canvases lag).
- ``generate_ms``: the bundled demo model at 256x192 on this machine's engine device, after warm-up.
- ``first_window_s``: from process start to the first shown window (``--startup-probe``), offscreen.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def bench_dabs(n: int = 600, size=(4096, 2048), diameter: int = 48, seed: int = 0) -> dict:
    from engine.labels import get_labelset

    from .model.painting import LabelColorizer, TileSnapshot, clip_rect, dab, dab_rect

    ls = get_labelset("camvid_11")
    w, h = size
    labels = np.full((h, w), ls.erase_index, np.uint8)
    col = LabelColorizer(labels, ls.palette())
    rng = np.random.default_rng(seed)
    pts = np.cumsum(rng.normal(0, 6, size=(n, 2)), axis=0) + (w / 2, h / 2)
    pts = np.clip(pts, 0, (w - 1, h - 1))
    snap = TileSnapshot(labels)
    times = []
    for i, (x, y) in enumerate(pts):
        t = time.perf_counter()
        r = clip_rect(dab_rect(x, y, diameter), w, h)
        snap.capture(r)
        r = dab(labels, x, y, diameter, i % 11)
        col.update(r)
        times.append((time.perf_counter() - t) * 1000)
    base = []
    for i, (x, y) in enumerate(pts[:20]):
        t = time.perf_counter()
        dab(labels, x, y, diameter, i % 11)
        col.update(None)
        base.append((time.perf_counter() - t) * 1000)
    return {"layer": f"{w}x{h}", "diameter": diameter, "n": n, "p50_ms": _pct(times, 50), "p95_ms": _pct(times, 95),
            "max_ms": max(times), "target_p95_ms": 4.0,
            "baseline_full_recolour_p50_ms": _pct(base, 50),
            "speedup_vs_baseline": _pct(base, 50) / max(_pct(times, 50), 1e-9)}


def bench_canvas(size=(8192, 4096), n_dabs: int = 400, strokes: int = 1000, budget_mb: int = 256) -> dict:
    """The editor's own path on a big canvas, offscreen: a dab through Document -> LUT recolour of its
    box -> repaint of that widget rectangle (processed synchronously), a contiguous and a global fill
    with their repaint, and the undo memory of ``strokes`` strokes against the budget."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from .canvas.view import CanvasView
    from .model.document import Document

    app = QApplication.instance() or QApplication([])
    w, h = size
    doc = Document(size=size)
    view = CanvasView(doc)
    view.resize(1600, 900)
    view.show()
    view.scale, view.offset = 1.0, view.offset * 0        # 1:1 zoom: every dab repaints real pixels
    app.processEvents()
    rng = np.random.default_rng(0)
    pts = np.cumsum(rng.normal(0, 6, size=(n_dabs, 2)), axis=0) + (800, 450)
    from PySide6.QtCore import QRectF

    def one_stroke(**kw) -> list[float]:
        times = []
        doc.begin_stroke(800, 450, 48, 8, **kw)
        for x, y in pts:
            t = time.perf_counter()
            r = doc.continue_stroke(float(x), float(y))
            if r is not None:
                view.repaint(view.image_to_widget_rect(QRectF(r[0], r[1], r[2] - r[0], r[3] - r[1])).adjusted(
                    -2, -2, 2, 2))
            times.append((time.perf_counter() - t) * 1000)
        doc.end_stroke()
        return times
    times = one_stroke()
    doc.ensure_layer("instances")                  # a thing class with the instance layer: two layers per dab
    app.processEvents()
    times_inst = one_stroke(instance=1)
    doc.instances = None
    doc.layers_changed.emit()
    # fills: a big region (the void background) contiguous, then every pixel of a class
    from .tools.shapes import polygon_mask

    r = polygon_mask([(3000, 1000), (5000, 1000), (5000, 2000), (3000, 2000)], w, h)
    doc.fill_shape(r[0], r[1], 1, "region")                           # a 2-megapixel region to fill
    fills = {}
    for name, (x, y, v, contiguous) in (("region_2mp", (4000, 1500, 2, True)),
                                        ("whole_canvas_33mp", (10, 10, 5, True)),
                                        ("global_class", (10, 10, 8, False))):
        t = time.perf_counter()
        doc.fill(x, y, v, contiguous)
        view.repaint()
        fills[name] = round((time.perf_counter() - t) * 1000, 1)
    doc.undo_stack.clear()
    doc._cmds = []
    doc.undo_budget = budget_mb << 20
    peak = 0
    t0 = time.perf_counter()
    for i in range(strokes):
        x, y = rng.uniform(100, w - 200), rng.uniform(100, h - 100)
        doc.begin_stroke(x, y, 64, i % 11)
        for k in range(8):
            doc.continue_stroke(x + 20 * k, y + 9 * k)
        doc.end_stroke()
        peak = max(peak, doc.history_bytes())
    stroke_s = time.perf_counter() - t0
    out = {"canvas": f"{w}x{h}", "dab_diameter": 48, "dabs": n_dabs,
           "dab_with_display_p50_ms": round(_pct(times, 50), 3), "dab_with_display_p95_ms": round(_pct(times, 95), 3),
           "dab_with_instances_p95_ms": round(_pct(times_inst, 95), 3),
           "target_dab_p95_ms": 8.0, "fill_with_display_ms": fills, "target_fill_ms": 150, "fill_note": "a 2-megapixel region; the whole 33-megapixel canvas for scale",
           "undo": {"strokes": strokes, "budget_mb": budget_mb, "peak_history_mb": round(peak / 2 ** 20, 2),
                    "steps_kept": doc.undo_stack.count(), "within_budget": peak <= budget_mb << 20,
                    "ms_per_stroke": round(stroke_s / strokes * 1000, 2)}}
    view.close()
    import shiboken6

    doc.undo_stack.clear()
    shiboken6.delete(view)
    shiboken6.delete(doc)
    return out


def bench_generate(n: int = 10) -> dict:
    import torch

    from engine.devices import pick_device
    from engine.labels import read_label_png
    from engine.paths import demo_dir
    from engine.registry import demo_model_dir, generate, load_model

    dev = pick_device("auto")
    t = time.perf_counter()
    model = load_model(demo_model_dir(), dev)
    load_s = time.perf_counter() - t
    labels = read_label_png(demo_dir() / "scene_labels.png", model.labelset)
    res = {"model": model.name, "device": str(dev), "size": "256x192", "threads": torch.get_num_threads(),
           "load_s": load_s, "target_ms": 1000.0}
    for mode in ("reference", "fast"):
        ref = mode == "reference"
        generate(model, labels, size_wh=(256, 192), reference=ref)   # warm-up
        times = []
        for _ in range(n):
            t = time.perf_counter()
            img = generate(model, labels, size_wh=(256, 192), reference=ref)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t) * 1000)
        res[f"{mode}_p50_ms"], res[f"{mode}_p95_ms"] = _pct(times, 50), _pct(times, 95)
    res["p50_ms"], res["p95_ms"] = res["fast_p50_ms"], res["fast_p95_ms"]
    res["fast_speedup"] = res["reference_p50_ms"] / res["fast_p50_ms"]
    res["output_std"] = float(img.std())
    return res


def voronoi_layout(w: int, h: int, regions: int = 24, classes: int = 182, seed: int = 0) -> np.ndarray:
    """A scene-like label map: ``regions`` Voronoi cells with random classes (COCO-Stuff maps have
    10-30 regions), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform((0, 0), (w, h), size=(regions, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    d = (xx[..., None] - pts[:, 0]) ** 2 + (yy[..., None] - pts[:, 1]) ** 2
    return rng.integers(0, classes, size=regions)[d.argmin(-1)]


def bench_spade_coco(n: int = 3) -> dict:
    """Full-size SPADE coco (97M parameters, random weights of the official shapes) at 256x256 on a
    scene-like layout: fast path against the op-for-op reference, same weights, one run. Each is timed
    from the label map, as ``generate`` runs it (the reference's one-hot input, the fast path's keys)."""
    import torch

    from engine.labels import get_labelset
    from engine.labels.maps import label_keys, semantics_tensor
    from engine.models.spade import SPADEGenerator, SpadeConfig
    from engine.models.spade_fast import FastSPADEGenerator

    torch.manual_seed(0)
    g = SPADEGenerator(SpadeConfig(semantic_nc=184, ngf=64))
    k = get_labelset("coco_stuff_182").one_hot_channels
    lab = voronoi_layout(256, 256, regions=24, classes=182)
    g.train()
    with torch.no_grad():
        g(semantics_tensor(lab, k, lab))         # BN statistics from one forward, as the official vectors do
    g.eval()
    fast = FastSPADEGenerator(g, n_onehot=k)
    runs = {"reference": lambda: g(semantics_tensor(lab, k, lab)),
            "fast": lambda: fast.forward_labels(label_keys(lab, lab, True))}
    out = {}
    for name, run in runs.items():
        with torch.inference_mode():
            run()
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                y = run()
                times.append((time.perf_counter() - t0) * 1000)
        out[f"{name}_p50_ms"] = _pct(times, 50)
        out[f"{name}_out"] = y
    diff = float((out.pop("fast_out") - out.pop("reference_out")).abs().max())
    return {"size": "256x256", "parameters": int(sum(p.numel() for p in g.parameters())), **out,
            "fast_speedup": out["reference_p50_ms"] / out["fast_p50_ms"], "max_abs_diff": diff}


def _pix2pixhd_1024p(seed: int = 0):
    """The released label2city_1024p LocalEnhancer (183M parameters), random weights of its shapes."""
    import torch

    from engine.models.pix2pixhd import Pix2PixHDConfig, build_generator

    torch.manual_seed(seed)
    g = build_generator(Pix2PixHDConfig(input_nc=36, netG="local", ngf=32))
    with torch.no_grad():
        for p in g.parameters():
            if p.dim() > 1:   # unit-gain init so activations stay in a realistic range through 30 layers
                p.normal_(0.0, p[0].numel() ** -0.5)
    return g.eval()


def bench_pix2pixhd_1024p(n: int = 3) -> dict:
    """pix2pixHD label2city_1024p at 2048x1024 on a scene-like Cityscapes layout: the fast path
    (look-up first convolutions, Winograd residual blocks, streamed full-resolution strips) against
    the op-for-op reference, same weights, in one run: each path once untimed first (warm-up), then
    ``n`` timed runs of each, alternating (a shared machine's slow spells fall on both), median."""
    import torch

    from engine.labels.maps import label_keys, semantics_tensor
    from engine.models.pix2pixhd_fast import FastPix2PixHD

    g = _pix2pixhd_1024p()
    fast = FastPix2PixHD(g, n_onehot=35, instance_edge=True)
    lab = voronoi_layout(2048, 1024, regions=40, classes=35)
    out = {}
    names = ("fast", "reference")

    def run(name):
        return fast.forward_labels(label_keys(lab)) if name == "fast" else g(semantics_tensor(lab, 35, lab))

    with torch.inference_mode():
        for name in names:
            run(name)                  # warm-up (its result is dropped at once), as SPADE's bench does
        times = {name: [] for name in names}
        for _ in range(n):
            for name in names:
                out.pop(f"{name}_out", None)
                t0 = time.perf_counter()
                y = run(name)
                times[name].append((time.perf_counter() - t0) * 1000)
                out[f"{name}_out"] = y
                del y
        for name in names:
            out[f"{name}_p50_ms"] = _pct(times[name], 50)
            out[f"{name}_runs_ms"] = [round(t, 1) for t in times[name]]
    diff = float((out.pop("fast_out") - out.pop("reference_out")).abs().max())
    return {"size": "2048x1024", "parameters": int(sum(p.numel() for p in g.parameters())), **out,
            "fast_speedup": out["reference_p50_ms"] / out["fast_p50_ms"], "max_abs_diff": diff}


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark, so a later peak is what came after; False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    """The RSS high-water mark (since the last reset), bytes."""
    import resource

    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _probe_net(which: str, small: bool = False):
    """(model, fast generation callable, its input) of the RSS probe: the benchmark's full-size model,
    or (``small``) a narrow one of the same family on a small map."""
    from engine.labels.maps import label_keys

    if which == "pix2pixhd_1024p":
        from engine.models.pix2pixhd import Pix2PixHDConfig, build_generator
        from engine.models.pix2pixhd_fast import FastPix2PixHD

        g = build_generator(Pix2PixHDConfig(input_nc=36, netG="local", ngf=8)).eval() if small \
            else _pix2pixhd_1024p()                                       # small: a 256-ch trunk
        size, regions = ((256, 128), 12) if small else ((2048, 1024), 40)
        x = label_keys(voronoi_layout(*size, regions=regions, classes=35).astype(np.uint8))
        return g, FastPix2PixHD(g, n_onehot=35, instance_edge=True).forward_labels, x
    from engine.models.blocks import freeze_spectral_norm
    from engine.models.spade import SPADEGenerator, SpadeConfig
    from engine.models.spade_fast import FastSPADEGenerator

    g = SPADEGenerator(SpadeConfig(semantic_nc=184, ngf=4 if small else 64)).eval()
    freeze_spectral_norm(g)            # as the registry does: one copy, shared by the fast path
    lab = voronoi_layout(256, 256, regions=24, classes=182).astype(np.uint8)
    return g, FastSPADEGenerator(g, n_onehot=183).forward_labels, label_keys(lab, lab, True)


def _warm_runtime(which: str) -> None:
    """One small generation through the same code (a narrow model of the family on a small map, then
    dropped): the first use of each kernel pages in its library code (~35 MB of file-backed pages of
    libtorch for pix2pixHD) and imports the modules. That is the runtime's memory, resident in any
    process that has generated once, so the probe's runtime baseline is taken after it."""
    import gc

    import torch

    from engine.devices import trim_heap

    with torch.inference_mode():
        g, net, x = _probe_net(which, small=True)
        net(x)
    del g, net, x
    gc.collect()
    trim_heap()


def _rss_probe(which: str) -> dict:
    """Run in a fresh process: RSS of the runtime (cold, and warm: after one small generation of the
    family, :func:`_warm_runtime`), weight bytes, peak RSS during one fast generation."""
    import gc

    import torch

    torch.zeros(1)
    cold = _rss_now()
    _warm_runtime(which)
    base = _rss_now()
    g, net, x = _probe_net(which)
    weights = sum(t.numel() * t.element_size() for t in g.state_dict().values())
    gc.collect()
    loaded = _rss_now()
    reset = _reset_peak_rss()    # so the peak is the generation's, not the construction's
    with torch.inference_mode():
        net(x)
    peak = _peak_rss()
    return {"weights_mb": weights / 2**20, "rss_before_model_mb": base / 2**20, "rss_loaded_mb": loaded / 2**20,
            "rss_cold_runtime_mb": cold / 2**20, "peak_rss_mb": peak / 2**20, "peak_over_weights": peak / weights,
            "peak_minus_runtime_over_weights": (peak - base) / weights,
            "peak_minus_cold_runtime_over_weights": (peak - cold) / weights, "peak_is_generation_only": reset}


def bench_peak_rss(which: str) -> dict:
    if not os.path.exists("/proc/self/statm"):
        return {"unavailable": "peak RSS is measured on Linux only"}
    out = subprocess.run([sys.executable, "-m", "app.bench", "--rss-probe", which], capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"RSS probe failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- photorealistic smoothing ----------------------------------------------------------------------------

SMOOTH_HW = (384, 512)


def _shared_dir() -> Path:
    return Path(os.environ.get("SEMSTUDIO_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def _smoothing_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(stylized, content, style photo, what the stylized image is) at 384x512: a WCT2 example pair and,
    when the bundled PhotoWCT model is there, its stylization (else a colour-shifted, noisy copy of the
    content: the system and its cost depend on the content only)."""
    from PIL import Image

    root = _shared_dir() / "datasets" / "photo_style_examples_wct2"
    h, w = SMOOTH_HW
    with Image.open(root / "content" / "in00.png") as im:
        cont = np.asarray(im.convert("RGB").resize((w, h), Image.BICUBIC))
    with Image.open(root / "style" / "in00.png") as im:
        style = np.asarray(im.convert("RGB"))
    try:
        from engine.models.photowct import load_photowct
        from engine.stylize.pipeline import PhotoWCT

        nets, _ = load_photowct(None)
        return PhotoWCT(nets).transform(cont, style), cont, style, "PhotoWCT output (bundled decoders)"
    except Exception:               # noqa: BLE001 - no bundled model yet: said in the result
        rng = np.random.default_rng(0)
        styl = np.clip(cont.astype(float)[..., ::-1] * 0.8 + 30 + rng.normal(0, 12, cont.shape), 0, 255)
        return styl.astype(np.uint8), cont, style, "colour-shifted noisy copy of the content (no bundled PhotoWCT)"


def _smooth_probe(which: str, inputs: str) -> dict:
    """In a fresh process: one exact smoothing at 384x512, by CG on the diagonals or by a sparse LU of
    the same matrix (scipy ``factorized``, as the official Propagator). Time, peak RSS over the start.
    ``inputs``: an .npz with the stylized and content images (nothing else has run in this process)."""
    import tempfile

    import torch

    from engine.stylize import smooth

    with np.load(inputs) as z:
        styl, cont = z["stylized"], z["content"]
    torch.zeros(1)
    base = _rss_now()
    _reset_peak_rss()
    t0 = time.perf_counter()
    if which == "cg":
        out, info = smooth.smooth_exact(styl, cont)
    else:
        import scipy.sparse as sp
        from scipy.sparse.linalg import factorized

        b = smooth._to_unit(smooth._edge_pad(styl, 2))
        c = smooth._to_unit(smooth._edge_pad(cont, 2))
        diag = smooth.smoothing_diagonals(c).numpy()
        hh, ww = diag.shape[1:]
        n = hh * ww
        rows, cols, vals = [], [], []
        idx = np.arange(n).reshape(hh, ww)
        for o in range(25):
            dy, dx = o // 5 - 2, o % 5 - 2
            ys, xs = slice(max(0, -dy), hh - max(0, dy)), slice(max(0, -dx), ww - max(0, dx))
            src = idx[ys, xs]
            dst = idx[max(0, dy):hh - max(0, -dy), max(0, dx):ww - max(0, -dx)]
            rows.append(src.ravel())
            cols.append(dst.ravel())
            vals.append(diag[o][ys, xs].ravel())
        a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        solve = factorized(a)
        rhs = (1 - smooth.BETA) * b.numpy().reshape(n, 3)
        v = np.stack([solve(np.ascontiguousarray(rhs[:, k])) for k in range(3)], 1).reshape(hh, ww, 3)
        out = np.clip(np.rint(v[2:-2, 2:-2] * 255.0), 0, 255).astype(np.uint8)
        info = {"nnz": int(a.nnz)}
    secs = time.perf_counter() - t0
    peak = _peak_rss()
    fd, path = tempfile.mkstemp(suffix=".npy")
    os.close(fd)
    np.save(path, out)
    return {"seconds": secs, "peak_rss_over_start_mb": (peak - base) / 2**20, "output": path,
            "threads": torch.get_num_threads(), **info}


def bench_smoothing() -> dict:
    """Exact smoothing at 384x512 against the official direct sparse LU of the same system (one run, fresh
    processes), the fast mode, and full PIS at 512x384."""
    if not os.path.exists("/proc/self/statm"):
        return {"unavailable": "measured on Linux only (peak RSS from /proc)"}
    import importlib.util

    from engine.stylize import smooth

    res: dict = {"size": f"{SMOOTH_HW[1]}x{SMOOTH_HW[0]}"}
    styl, cont, style, what = _smoothing_inputs()
    res["stylized_input"] = what

    import tempfile

    fd, inputs = tempfile.mkstemp(suffix=".npz")
    os.close(fd)
    np.savez(inputs, stylized=styl, content=cont)

    def probe(which):
        out = subprocess.run([sys.executable, "-m", "app.bench", "--smooth-probe", which, inputs],
                             capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"smoothing probe {which} failed: {out.stderr.strip()[-300:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    cg = probe("cg")
    res["exact_cg"] = {k: v for k, v in cg.items() if k != "output"}
    if importlib.util.find_spec("scipy") is None:
        res["sparse_lu"] = {"unavailable": "scipy is not installed (pip install '.[bench]')"}
    else:
        lu = probe("lu")
        res["sparse_lu"] = {k: v for k, v in lu.items() if k != "output"}
        a, b = np.load(cg["output"]).astype(float), np.load(lu["output"]).astype(float)
        mse = float(np.mean((a - b) ** 2))
        res["psnr_cg_vs_lu_db"] = 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))
        res["speedup_vs_lu"] = lu["seconds"] / cg["seconds"]
        res["memory_ratio_vs_lu"] = cg["peak_rss_over_start_mb"] / max(lu["peak_rss_over_start_mb"], 1e-9)
        os.unlink(lu["output"])
        res["targets"] = {"speedup_vs_lu": ">= 20", "psnr_cg_vs_lu_db": ">= 45", "memory_ratio_vs_lu": "<= 0.5"}
    os.unlink(cg["output"])
    os.unlink(inputs)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        smooth.smooth_fast(styl, cont)
        times.append((time.perf_counter() - t0) * 1000)
    res["fast_p50_ms"] = _pct(times, 50)
    res["fast_target_ms"] = 50
    try:
        from engine.models.photowct import load_photowct
        from engine.stylize.pipeline import PhotoWCT, stylize

        nets, _ = load_photowct(None)
        wct = PhotoWCT(nets)
        stages: dict = {}
        last = [time.perf_counter()]

        def prog(stage, frac):
            now = time.perf_counter()
            stages[stage] = stages.get(stage, 0.0) + now - last[0]
            last[0] = now
        t0 = time.perf_counter()
        stylize(wct, cont, style, smooth="exact", progress=prog)
        res["pis_512x384_s"] = time.perf_counter() - t0
        res["pis_stages_s"] = {k: round(v, 3) for k, v in stages.items()}
        res["pis_target_s"] = 2.0
    except Exception as e:   # noqa: BLE001 - reported, not hidden
        res["pis_512x384_s"] = f"unavailable: {e}"
    return res


def bench_training(steps: int = 3) -> dict:
    """Seconds per training step at 256x192 for each family, with its CamVid CPU preset (batch as the
    preset), on real CamVid pairs; the first step (allocations, VGG load) is not counted."""
    import tempfile

    import torch

    from engine.paths import resources_dir
    from engine.train.trainer import TrainConfig, make_trainer

    data = _shared_dir() / "datasets" / "camvid_segnet"
    out = {"threads": torch.get_num_threads()}
    for family in ("spade", "pix2pixhd", "groupdnet", "sflow"):
        d = json.loads((resources_dir() / "train_presets" / f"{family}_camvid_cpu.json").read_text())
        d = {k: v for k, v in d.items() if not k.startswith("_")}
        d.update(data=str(data), size=[256, 192], limit=16, threads=None)
        with tempfile.TemporaryDirectory() as tmp:
            tr = make_trainer(TrainConfig.from_dict(d), tmp, log=lambda m: None)
            batches = [tr.batch_for(i) for i in range(steps + 1)]
            tr.train_step(*batches[0])
            times = []
            for b in batches[1:]:
                t0 = time.perf_counter()
                tr.train_step(*b)
                times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        out[family] = {"batch": d["batch"], "size": [256, 192], "seconds_per_step": round(med, 3),
                       "steps_per_second": round(1 / med, 4), "images_per_second": round(d["batch"] / med, 3)}
    return out


def bench_eval(n: int = 6) -> dict:
    """Evaluation throughput of ``semstudio eval`` on CamVid val: seconds per image for the oracle pass
    (segment + VGG descriptor of a real photo) and for a generator (generate + segment + descriptor)."""
    from engine.eval.protocol import Evaluator
    from engine.registry import load_model

    data = _shared_dir() / "datasets" / "camvid_segnet"
    ev = Evaluator(str(data), "val", limit=n, fd_floor=False)
    model = load_model(None)
    t0 = time.perf_counter()
    ev.real_stats(model.labelset, tuple(model.resolution))
    t_real = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    ev.evaluate(model)
    t_gen = (time.perf_counter() - t0) / n
    return {"images": n, "size": list(model.resolution), "oracle_seconds_per_image": round(t_real, 3),
            "generator_seconds_per_image": round(t_gen, 3), "generator_images_per_second": round(1 / t_gen, 3)}


def bench_video(n: int = 16) -> dict:
    """Video at 256x192 on the first ``n`` CamVid val frames: frames per second of per-frame generation,
    stabilised generation (two DIS flows + warp + blend per frame) and S-Flow (with its Laplacian edges)
    when a bundled S-Flow model exists; and the flow time per frame pair."""
    from PIL import Image

    from engine.labels.io import read_label_png
    from engine.registry import StyleControls, catalog, generate, load_model
    from engine.video.flow import dense_flow
    from engine.video.temporal import Stabilizer

    root = _shared_dir() / "datasets" / "camvid_segnet"
    names = sorted(p.name for p in (root / "val").iterdir())[:n]
    size = (256, 192)
    frames = [np.asarray(Image.open(root / "val" / k).convert("RGB").resize(size, Image.BILINEAR)) for k in names]
    model = load_model(None)
    labs = [read_label_png(root / "valannot" / k, model.labelset) for k in names]
    generate(model, labs[0], seed=0, size_wh=size)            # warm-up
    out: dict = {"frames": n, "size": list(size)}
    t0 = time.perf_counter()
    for a, b in zip(frames[1:], frames[:-1]):
        dense_flow(a, b)
    out["flow_ms_per_frame_pair"] = round((time.perf_counter() - t0) / (n - 1) * 1000, 2)

    def run(m, stab, edges):
        t0 = time.perf_counter()
        for lab, f in zip(labs, frames):
            img = generate(m, lab, seed=0, size_wh=size, controls=StyleControls(frame=f) if edges else None)
            if stab is not None:
                stab.step(img, f)
        return round(n / (time.perf_counter() - t0), 2)

    out["per_frame_fps"] = {"model": model.name, "fps": run(model, None, False)}
    out["stabilised_fps"] = {"model": model.name, "strength": 0.6, "fps": run(model, Stabilizer(0.6), False)}
    sflow = [e for e in catalog() if e["where"] == "bundled" and e.get("family") == "sflow" and e["state"] == "ok"]
    if sflow:
        m = load_model(sflow[0]["path"])
        generate(m, labs[0], seed=0, size_wh=size)
        out["sflow_fps"] = {"model": m.name, "fps": run(m, None, True)}
        out["sflow_stabilised_fps"] = {"model": m.name, "strength": 0.6, "fps": run(m, Stabilizer(0.6), True)}
    else:
        out["sflow_fps"] = {"unavailable": "no bundled S-Flow model yet"}
    return out


def bench_text(n: int = 10, model: str | None = None) -> dict:
    """Text-edit latency at 256x192 after the model and the text encoder are loaded: whole-image edits
    and class-limited ones (mask given), a new prompt each time (the encoder runs) and a repeated one
    (its embedding is cached). The baseline is the same edit run at the full 256x192 instead of the
    model's working size."""
    from PIL import Image

    from engine.registry import catalog
    from engine.text.edit import edit, load_editor, work_size

    if model is None:
        found = [e for e in catalog() if e["where"] == "bundled" and e.get("family") == "simgan" and e["state"] == "ok"]
        if not found:
            return {"unavailable": "no bundled SIMGAN model yet"}
        model = found[0]["path"]
    ed = load_editor(model)
    root = _shared_dir() / "datasets" / "camvid_segnet"
    names = sorted(p.name for p in (root / "val").iterdir())[:n]
    imgs = [np.asarray(Image.open(root / "val" / k).convert("RGB").resize((256, 192), Image.BILINEAR)) for k in names]
    mask = np.zeros((192, 256), bool)
    mask[:80] = True
    colours = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey"]
    edit(ed, imgs[0], "the sky is red")

    def timed(fn):
        ts = []
        for i, im in enumerate(imgs):
            t0 = time.perf_counter()
            fn(i, im)
            ts.append((time.perf_counter() - t0) * 1000)
        return _pct(ts, 50), _pct(ts, 95)

    new = timed(lambda i, im: edit(ed, im, f"the building is {colours[i % len(colours)]} and the road is "
                                          f"{colours[(i * 3 + 1) % len(colours)]}", seed=i))
    cached = timed(lambda i, im: edit(ed, im, "the sky is red", seed=i))
    masked = timed(lambda i, im: edit(ed, im, "the sky is red", mask=mask, seed=i))
    ed.resolution = (256, 192)                       # baseline: the generator at the full size
    full = timed(lambda i, im: edit(ed, im, "the sky is red", seed=i))
    return {"model": ed.name, "size": [256, 192], "work_size": list(work_size(load_editor(model), 256, 192)),
            "new_prompt_p50_ms": round(new[0], 1), "new_prompt_p95_ms": round(new[1], 1),
            "cached_prompt_p50_ms": round(cached[0], 1), "cached_prompt_p95_ms": round(cached[1], 1),
            "class_limited_p50_ms": round(masked[0], 1), "baseline_full_size_p50_ms": round(full[0], 1),
            "speedup_vs_full_size": round(full[0] / cached[0], 2), "target_ms": 300}


def bench_first_window(runs: int = 3) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    vals, wall = [], []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "app", "--startup-probe"], env=env, capture_output=True,
                             text=True, timeout=120)
        wall.append(time.perf_counter() - t)
        for line in out.stdout.splitlines():
            if line.startswith("first-window "):
                vals.append(float(line.split()[1]))
        if out.returncode != 0:
            raise RuntimeError(f"editor startup probe failed: {out.stderr.strip()[-300:]}")
    return {"runs": runs, "in_process_p50_s": _pct(vals, 50), "process_wall_p50_s": _pct(wall, 50),
            "platform": env["QT_QPA_PLATFORM"]}


def bench_ui_stall(tick_ms: int = 5) -> dict:
    """The editor offscreen with a watchdog timer on the UI thread (every ``tick_ms``) while the engine
    loads a model, generates, stylizes, renders a three-frame video and reads the model catalogue;
    a stall is a gap between ticks beyond the tick. Target: no stall over 50 ms."""
    import tempfile
    from pathlib import Path

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="semstudio_stall_"))
    os.environ.setdefault("SEMSTUDIO_DATA_DIR", str(tmp / "data"))
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.paths import demo_dir

    from .main_window import MainWindow
    from .settings import Settings

    app = QApplication.instance() or QApplication([])
    win = MainWindow(labels_path=demo_dir() / "scene_labels.png", interactive_errors=False,
                     settings=Settings(tmp / "settings.json"))
    win.show()
    app.processEvents()
    clock = QElapsedTimer()
    gaps: dict[str, list[float]] = {}
    phase = {"name": "idle", "last": 0.0}

    def tick():
        now = clock.nsecsElapsed() / 1e6
        gaps.setdefault(phase["name"], []).append(now - phase["last"] - tick_ms)
        phase["last"] = now

    def run(name: str, start, done_kind: str | None, timeout_s: float = 600) -> float:
        """Start a job and spin the event loop until its result (the watchdog ticks meanwhile)."""
        phase["name"] = name
        box = {}
        loop = QEventLoop()

        def on_event(ev):
            if ev.kind in ("result", "error", "cancelled") and ev.request_kind == done_kind:
                box["ev"] = ev
                loop.quit()
        win.client.event.connect(on_event)
        t0 = time.perf_counter()
        start()
        if done_kind is not None:
            QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()
        win.client.event.disconnect(on_event)
        ev = box.get("ev")
        if done_kind is not None and (ev is None or ev.kind != "result"):
            raise RuntimeError(f"{name}: {getattr(ev, 'error', 'timed out')}")
        return time.perf_counter() - t0

    timer = QTimer()
    timer.setInterval(tick_ms)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    phase["last"] = clock.nsecsElapsed() / 1e6
    seconds = {}
    # as `semstudio` itself does 0.2 s after the window appears: import torch and load the model
    seconds["startup_preload"] = run("startup preload (torch import + model load)", lambda: win.client.preload(None),
                                     "LoadModelRequest")
    seconds["first_generate"] = run("first generate", win.generate, "GenerateRequest")
    seconds["generate_x3"] = sum(run("generate", win.generate, "GenerateRequest") for _ in range(3))
    style = win.stylize_panel.current_style()
    seconds["stylize_exact"] = run("stylize (PhotoWCT + exact smoothing)",
                                   lambda: win.stylize(style, "global", "exact"), "StylizeRequest")
    tp = win.timeline_panel
    tp.new_timeline()
    tp.duplicate_frame()
    tp.duplicate_frame()
    seconds["video_3_frames"] = run("video (3 frames, stabilised)", lambda: tp.render(str(tmp / "v.mp4")),
                                    "VideoRequest")
    seconds["catalogue"] = run("model catalogue (hashes)", lambda: win.model_manager(interactive=False),
                               "CallableRequest")
    timer.stop()
    win.client.shutdown()
    win.close()
    out = {"tick_ms": tick_ms, "target_max_stall_ms": 50, "seconds": {k: round(v, 2) for k, v in seconds.items()},
           "phases": {}}
    worst = 0.0
    for name, g in gaps.items():
        g = [max(0.0, x) for x in g[1:]] or [0.0]
        out["phases"][name] = {"ticks": len(g), "max_stall_ms": round(max(g), 1),
                               "p99_stall_ms": round(_pct(g, 99), 1)}
        worst = max(worst, max(g))
    out["max_stall_ms"] = round(worst, 1)
    after = [v["max_stall_ms"] for k, v in out["phases"].items() if not k.startswith("startup")]
    out["max_stall_after_startup_ms"] = max(after) if after else 0.0
    out["within_target"] = worst <= 50
    out["note"] = ("the startup preload imports torch on the engine thread (libraries dlopen()ed without the GIL, "
                   "the garbage collector paused during the import and its objects frozen afterwards); the "
                   "longest remaining piece is torch's C extension initialising with the GIL held")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="semstudio bench")
    p.add_argument("--json", action="store_true")
    kinds = ["dab", "canvas", "generate", "window", "spade_coco", "pix2pixhd", "smoothing", "training", "eval", "video",
             "text", "ui"]
    p.add_argument("--only", choices=kinds, action="append")
    p.add_argument("--rss-probe", help=argparse.SUPPRESS)
    p.add_argument("--smooth-probe", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_probe:
        print(json.dumps(_rss_probe(args.rss_probe)))
        return 0
    if args.smooth_probe:
        print(json.dumps(_smooth_probe(*args.smooth_probe)))
        return 0
    only = set(args.only or kinds)
    res: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "platform": platform.platform()}}
    if "dab" in only:
        res["brush_dab"] = bench_dabs()
    if "canvas" in only:
        res["canvas_8192x4096"] = bench_canvas()
    if "generate" in only:
        res["generate"] = bench_generate()
    if "window" in only:
        res["first_window"] = bench_first_window()
    if "spade_coco" in only:
        res["spade_coco_256"] = bench_spade_coco()
        res["spade_coco_256"]["memory"] = bench_peak_rss("spade_coco")
    if "pix2pixhd" in only:
        res["pix2pixhd_1024p_2048x1024"] = bench_pix2pixhd_1024p()
        res["pix2pixhd_1024p_2048x1024"]["memory"] = bench_peak_rss("pix2pixhd_1024p")
    if "smoothing" in only:
        res["smoothing"] = bench_smoothing()
    if "training" in only:
        res["training_256x192"] = bench_training()
    if "eval" in only:
        res["eval_throughput"] = bench_eval()
    if "video" in only:
        res["video_256x192"] = bench_video()
    if "text" in only:
        res["text_edit_256x192"] = bench_text()
    if "ui" in only:
        res["ui_stall"] = bench_ui_stall()
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        if "brush_dab" in res:
            b = res["brush_dab"]
            print(f"brush dab on {b['layer']}: p50 {b['p50_ms']:.3f} ms, p95 {b['p95_ms']:.3f} ms "
                  f"(target < {b['target_p95_ms']} ms; full-recolour baseline {b['baseline_full_recolour_p50_ms']:.1f} ms, "
                  f"{b['speedup_vs_baseline']:.0f}x)")
        if "canvas_8192x4096" in res:
            print("canvas 8192x4096: " + json.dumps(res["canvas_8192x4096"]))
        if "generate" in res:
            g = res["generate"]
            print(f"generate {g['model']} {g['size']} on {g['device']}: p50 {g['p50_ms']:.0f} ms, p95 {g['p95_ms']:.0f} ms "
                  f"(reference path {g['reference_p50_ms']:.0f} ms, {g['fast_speedup']:.2f}x)")
        if "first_window" in res:
            f = res["first_window"]
            print(f"first window: {f['in_process_p50_s']:.2f} s in process, {f['process_wall_p50_s']:.2f} s wall")
        for key, label in (("spade_coco_256", "SPADE coco 256x256"), ("pix2pixhd_1024p_2048x1024",
                                                                      "pix2pixHD 1024p 2048x1024")):
            c = res.get(key)
            if c is None:
                continue
            print(f"{label}: reference {c['reference_p50_ms']:.0f} ms, fast {c['fast_p50_ms']:.0f} ms "
                  f"({c['fast_speedup']:.2f}x, max diff {c['max_abs_diff']:.1e})")
            mem = c.get("memory")
            if mem and "peak_rss_mb" in mem:
                print(f"{label} memory: weights {mem['weights_mb']:.0f} MB, peak RSS {mem['peak_rss_mb']:.0f} MB "
                      f"({mem['peak_over_weights']:.2f}x weights; {mem['peak_minus_runtime_over_weights']:.2f}x "
                      f"without the {mem['rss_before_model_mb']:.0f} MB warm Python+torch runtime, "
                      f"{mem['peak_minus_cold_runtime_over_weights']:.2f}x without the cold one)")
        if "smoothing" in res:
            print("smoothing: " + json.dumps(res["smoothing"]))
        for fam, t in res.get("training_256x192", {}).items():
            if isinstance(t, dict):
                print(f"training {fam} 256x192 batch {t['batch']}: {t['seconds_per_step']:.2f} s/step "
                      f"({t['images_per_second']:.2f} images/s)")
        if "eval_throughput" in res:
            e = res["eval_throughput"]
            print(f"eval: oracle {e['oracle_seconds_per_image']:.2f} s/image, generator "
                  f"{e['generator_seconds_per_image']:.2f} s/image")
        if "video_256x192" in res:
            print("video 256x192: " + json.dumps(res["video_256x192"]))
        if "text_edit_256x192" in res:
            print("text edit 256x192: " + json.dumps(res["text_edit_256x192"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

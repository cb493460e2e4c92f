"""Headless command line: ``semstudio generate | stylize | models | train | eval``.

Exit codes: 0 success, 2 bad input (one line on stderr saying what is wrong, no traceback).
The editor (``semstudio`` alone / ``semstudio open``) and ``bench`` are dispatched by ``app``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


class CLIError(Exception):
    """Bad input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise CLIError(f"{self.prog}: {message}")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x192, not '{text}'") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="semstudio", description="Semantic Studio: semantic image synthesis, offline.")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)

    g = sub.add_parser("generate", help="generate one image from a label map")
    g.add_argument("-l", "--labels", help="label map PNG (indexed, grey ids or colour-coded)")
    g.add_argument("-i", "--instances", help="instance map PNG (8/16-bit)")
    g.add_argument("-m", "--model", help="model folder, checkpoint file or bundled model name (default: demo)")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--size", type=_size, help="output size WxH (default: the model's resolution)")
    g.add_argument("--labelset", help="read the label map with this label set (default: the model's)")
    g.add_argument("--demo", action="store_true", help="use the bundled demo scene (and demo model)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    g.add_argument("--reference", action="store_true",
                   help="op-for-op official computation instead of the fast path (same result to ~1e-6)")
    g.add_argument("--style", help="style photo: SPADE VAE models (with their encoder) and pix2pixHD "
                   "instance-feature models take their look from it")
    g.add_argument("--class-style", action="append", default=[], metavar="CLASS=SEED[:T]",
                   help="GroupDNet: restyle one class with a code drawn from SEED, mixed by T (0..1, default 1); "
                        "repeatable")
    g.add_argument("--instance-cluster", action="append", default=[], metavar="ID=K",
                   help="pix2pixHD feature models: give instance ID the style of its class's cluster K; repeatable")
    g.add_argument("--smooth", choices=["exact", "fast", "none"], default="exact",
                   help="with --style on a model that takes no style photo: the generated image is restyled "
                        "by PhotoWCT and smoothed this way (default exact)")
    g.add_argument("--style-labels", help="with --style: label map of the style photo (same label set), for "
                   "region-by-region transfer")
    g.add_argument("--frame", help="S-Flow models: the RGB/CG frame whose Laplacian edges guide the result "
                   "(default: the label map's boundaries)")
    g.add_argument("-o", "--output", required=True, help="output PNG")

    st = sub.add_parser("stylize", help="photorealistic style transfer (PhotoWCT + smoothing)")
    st.add_argument("-c", "--content", required=True, help="content photo")
    st.add_argument("-s", "--style", required=True, help="style photo")
    st.add_argument("--content-labels", help="content region map: ids (grey/indexed PNG) or colour mask")
    st.add_argument("--style-labels", help="style region map, same convention as --content-labels")
    st.add_argument("--auto-labels", action="store_true",
                    help="street scenes: label photos that have no region map with the bundled segmenter, so "
                         "sky takes the style's sky, road its road, ...")
    st.add_argument("--smooth", choices=["exact", "fast", "none"], default="exact",
                    help="exact: the closed-form smoothing; fast: guided filter; none (default exact)")
    st.add_argument("-m", "--model", help="PhotoWCT model folder or official photo_wct.pth (default: bundled)")
    st.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    st.add_argument("--precision", choices=["auto", "fp32"], default="auto",
                    help="auto: the VGG networks in bfloat16 where the CPU multiplies it in hardware (AMX), "
                         "~3x faster, same reconstruction quality; fp32: float32 throughout")
    st.add_argument("-o", "--output", required=True, help="output PNG")

    ed = sub.add_parser("edit", help="text-guided edit of a photo (SIMGAN): 'the car is red'")
    ed.add_argument("-I", "--image", required=True, help="the photo to edit")
    ed.add_argument("-p", "--prompt", required=True, help='what to change, e.g. "the car is red"')
    lim = ed.add_mutually_exclusive_group()
    lim.add_argument("--mask-class", metavar="CLASS",
                     help="edit only this class (from --labels, else auto-labelled by the bundled segmenter)")
    lim.add_argument("--mask", help="edit only where this mask PNG is non-zero (same size as the image)")
    ed.add_argument("--labels", help="with --mask-class: the image's label map (indexed/grey PNG)")
    ed.add_argument("--seed", type=int, default=0, help="conditioning-augmentation sample (diversity)")
    ed.add_argument("--mean", action="store_true", help="use the text code's mean instead of a sample")
    ed.add_argument("--to", metavar="PROMPT2", help="interpolate towards a second prompt (with --alpha)")
    ed.add_argument("--alpha", type=float, default=0.5, help="with --to: 0 = --prompt, 1 = --to (default 0.5)")
    ed.add_argument("-m", "--model", help="SIMGAN model folder or name (default: the bundled one)")
    ed.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ed.add_argument("-o", "--output", required=True, help="output PNG")

    sg = sub.add_parser("segment", help="auto-label a street photo with the segmenter (label-map PNG out)")
    sg.add_argument("photo", help="the photo to label")
    sg.add_argument("--segmenter", help="segmenter model folder (default: the bundled camvid_segmenter)")
    sg.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    sg.add_argument("-o", "--output", required=True, help="label map PNG (indexed, the label set's palette)")

    v = sub.add_parser("video", help="label-map sequence to video (MP4 or PNG frames), optionally stabilised")
    v.add_argument("-L", "--labels-dir", required=True,
                   help="folder of label frames (sorted by name); with --frames, labels may be keyframes only")
    v.add_argument("--frames", metavar="RGB_DIR",
                   help="matching RGB/CG frames (same file stems): their flow drives stabilisation and carries "
                        "keyframe labels to the frames between")
    v.add_argument("-m", "--model", help="model folder, checkpoint or bundled name (default: demo)")
    v.add_argument("--stabilize", type=float, default=0.6, metavar="S",
                   help="temporal stabilisation strength 0..1 (0 = every frame on its own; default 0.6)")
    v.add_argument("--hold", action="store_true",
                   help="keyframes hold until the next one instead of travelling with the flow")
    v.add_argument("--fps", type=float, default=15.0, help="frames per second (default 15)")
    v.add_argument("--range", metavar="A:B", help="only frames A..B-1 (0-based)")
    v.add_argument("--seed", type=int, default=0, help="one seed for every frame (multimodal models)")
    v.add_argument("--size", type=_size, help="output size WxH (default: the model's resolution)")
    v.add_argument("--labelset", help="read the label frames with this label set (default: the model's)")
    v.add_argument("--edges", choices=["laplacian", "dned"], default="laplacian",
                   help="S-Flow models with --frames: the frames' thresholded Laplacian (default) or the DNED edge "
                        "network's skeletons (varied by --edge-seed)")
    v.add_argument("--edge-seed", type=int, default=None, help="with --edges dned: one variation of the edges")
    v.add_argument("--export-labels", metavar="DIR", help="also write every label frame (after keyframe "
                   "propagation) as a lossless indexed PNG")
    v.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    v.add_argument("-o", "--output", required=True, help="OUT.mp4 (H.264) or a folder for PNG frames")

    m = sub.add_parser("models", help="list and inspect models")
    msub = m.add_subparsers(dest="models_cmd", parser_class=_Parser)
    ml = msub.add_parser("list", help="bundled and imported models with their state")
    ml.add_argument("--json", action="store_true")
    mimp = msub.add_parser("import", help="copy a checkpoint or model folder into your models folder")
    mimp.add_argument("file")
    mimp.add_argument("--name")
    mimp.add_argument("--labelset", help="label set, for checkpoints that do not imply one")
    mc = msub.add_parser("cluster", help="pix2pixHD feature models: k-means of encoded instance features per "
                                         "class, from real photos (the per-instance style palette)")
    mc.add_argument("model", help="model folder (with card.json, generator and encoder)")
    mc.add_argument("--data", required=True, help="photos with label (and instance) maps: images/ labels/ "
                                                  "[instances/] or the CamVid layout")
    mc.add_argument("--split", default="train")
    mc.add_argument("--clusters", type=int, default=10, help="clusters per class (official: 10)")
    mc.add_argument("--limit", type=int, help="only the first N photos")
    mi = msub.add_parser("inspect", help="infer family, options and label set from a checkpoint")
    mi.add_argument("file")
    mi.add_argument("--json", action="store_true")
    mi.add_argument("--no-card", action="store_true",
                    help="do not write card.json beside the checkpoint (written by default)")
    mi.add_argument("--write-card", action="store_true", help=argparse.SUPPRESS)   # the old spelling

    e = sub.add_parser("eval", help="the papers' protocol: segment generated images (pixel accuracy and mIoU "
                                    "against the oracle), FD-VGG, LPIPS diversity")
    e.add_argument("-m", "--model", action="append",
                   help="model folder, checkpoint or bundled name; repeat for several (default: every bundled "
                        "generator of the segmenter's label set)")
    e.add_argument("--data", required=True, help="dataset folder (CamVid layout or images/ + labels/)")
    e.add_argument("--split", default="val")
    e.add_argument("--segmenter", help="segmenter model folder (default: the bundled camvid_segmenter)")
    e.add_argument("--limit", type=int, help="only the first N images")
    e.add_argument("--seeds", type=int, default=3, help="seeds per label map for LPIPS diversity (multimodal)")
    e.add_argument("--no-floor", action="store_true", help="skip the FD-VGG floor (real split vs training photos)")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    e.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    e.add_argument("--write-card", action="store_true", help="store each model's figures in its card's eval")
    e.add_argument("--video", action="store_true",
                   help="video metrics on the split's consecutive frames (warping error, FD-VGG, mIoU) for "
                        "per-frame and stabilised generation")
    e.add_argument("--stabilize", type=float, default=0.6, metavar="S", help="with --video: strength (default 0.6)")
    e.add_argument("--size", type=_size, help="with --video: render at WxH (default: the model's resolution)")
    e.add_argument("--text", action="store_true",
                   help="text-edit metrics (SIMGAN) on held-out prompt combinations: attribute accuracy, SSIM "
                        "outside the target class, FD-VGG")

    t = sub.add_parser("train", help="train a model family on a dataset folder")
    t.add_argument("family", choices=["spade", "pix2pixhd", "groupdnet", "sflow", "simgan"])
    t.add_argument("--data", help="dataset folder (CamVid layout or images/ + labels/)")
    t.add_argument("--out", required=True, help="run folder (checkpoints, logs, samples)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--config", help="JSON file of training options")
    t.add_argument("--preset", default=None, help="bundled preset name (e.g. spade_camvid_cpu)")
    t.add_argument("--steps", type=int)
    t.add_argument("--lr-decay-from", type=float, metavar="F",
                   help="fraction of --steps after which the learning rate falls linearly to 0 "
                        "(resumable: e.g. extend a finished run with a decay phase)")
    t.add_argument("--size", type=_size)
    t.add_argument("--batch", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", default=None)
    t.add_argument("--threads", type=int, help="CPU threads for this run (default: the preset's)")
    t.add_argument("--on-bad", choices=["skip", "stop"], default=None,
                   help="bad samples: skip them with a report, or stop")
    t.add_argument("--limit", type=int, help="use only the first N samples (smoke runs)")
    t.add_argument("--pair-warmup", type=int, metavar="N", help="SIMGAN: the first N steps are supervised on the "
                   "recoloured targets alone (resumable: lengthen a run's warm-up)")
    t.add_argument("--export", help="after training, export the generator as a model folder here")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel training with PyTorch DDP; launch with torchrun (see README)")
    return p


def _device(name: str):
    """The torch device for ``--device`` (auto | cpu | cuda | mps); an unavailable one is bad input."""
    from .devices import pick_device

    try:
        return pick_device(name)
    except RuntimeError as e:
        raise CLIError(str(e)) from None


def _labels_for(args, model_labelset: str):
    from .labels import get_labelset, read_instance_png, read_label_png
    from .paths import demo_dir

    ls = get_labelset(args.labelset or model_labelset)
    if args.demo and not args.labels:
        lab_path = demo_dir() / "scene_labels.png"
    elif args.labels:
        lab_path = Path(args.labels)
    else:
        raise CLIError("generate needs -l LABELS.png or --demo")
    labels = read_label_png(lab_path, ls)
    inst = read_instance_png(args.instances) if args.instances else None
    if inst is not None and inst.shape != labels.shape:
        raise CLIError(f"instance map {inst.shape[::-1]} and label map {labels.shape[::-1]} differ in size")
    return labels, inst


def _pairs(items: list[str], what: str) -> list[tuple[int, str]]:
    out = []
    for it in items:
        k, sep, v = it.partition("=")
        if not sep:
            raise CLIError(f"{what} must look like A=B, not '{it}'")
        try:
            out.append((int(k), v))
        except ValueError:
            raise CLIError(f"{what}: '{k}' is not an integer") from None
    return out


def _controls(args):
    from .registry import StyleControls

    c = StyleControls()
    if args.style:
        c.style_image = _read_image(args.style, "image")
    styles = {}
    for cls, v in _pairs(args.class_style, "--class-style"):
        seed, _, t = v.partition(":")
        try:
            styles[cls] = (int(seed), float(t) if t else 1.0)
        except ValueError:
            raise CLIError(f"--class-style {cls}={v}: expected SEED or SEED:T") from None
    c.class_styles = styles or None
    clusters = {}
    for iid, v in _pairs(args.instance_cluster, "--instance-cluster"):
        try:
            clusters[iid] = int(v)
        except ValueError:
            raise CLIError(f"--instance-cluster {iid}={v}: K must be an integer") from None
    c.instance_clusters = clusters or None
    if getattr(args, "frame", None):
        c.frame = _read_image(args.frame, "frame")
    return c


def _takes_style_photo(model) -> bool:
    """SPADE VAE models with their encoder, and pix2pixHD instance-feature models, encode a style photo."""
    if model.family == "spade":
        return bool(model.generator.cfg.use_vae and model.encoder is not None)
    if model.family == "pix2pixhd":
        return bool(model.generator.cfg.feat_num)
    return False


def cmd_generate(args) -> int:
    from PIL import Image

    from .labels import save_image_atomic
    from .registry import generate, load_model

    device = _device(args.device)
    model = load_model(args.model, device, labelset=args.labelset)
    labels, inst = _labels_for(args, model.labelset.name)
    if inst is not None and not model.instance_edge:
        print("semstudio: note: this model takes no instance map; -i is ignored", file=sys.stderr)
    controls = _controls(args)
    if controls.frame is not None and model.family != "sflow":
        print("semstudio: note: only S-Flow models take a frame; --frame is ignored", file=sys.stderr)
    post_style = None
    if controls.style_image is not None and not _takes_style_photo(model):
        post_style, controls.style_image = controls.style_image, None   # generate, then restyle
    img = generate(model, labels, inst, args.seed, args.size, reference=args.reference, controls=controls)
    if post_style is not None:
        from .labels.maps import resize_nearest

        from .labels import read_label_png

        style_labels = read_label_png(Path(args.style_labels), model.labelset) if args.style_labels else None
        content_labels = resize_nearest(labels, (img.shape[1], img.shape[0])) if style_labels is not None else None
        if style_labels is not None and style_labels.shape != post_style.shape[:2]:
            raise CLIError(f"--style-labels is {style_labels.shape[1]}x{style_labels.shape[0]} but the style photo "
                           f"is {post_style.shape[1]}x{post_style.shape[0]}")
        print(f"semstudio: {model.name} takes no style photo: restyling the result (PhotoWCT, "
              f"{args.smooth} smoothing)", file=sys.stderr)
        img = run_stylize(img, post_style, content_labels, style_labels, args.smooth, None, device).image
    out = Path(args.output)
    save_image_atomic(Image.fromarray(img), out)
    print(f"wrote {out} ({img.shape[1]}x{img.shape[0]}, model {model.name}, {device})")
    return 0


def _range(text: str | None, n: int) -> tuple[int, int | None]:
    if not text:
        return 0, None
    try:
        a, b = text.split(":")
        return int(a or 0), (int(b) if b else None)
    except ValueError:
        raise CLIError(f"--range must look like 10:50, not '{text}'") from None


def cmd_video(args) -> int:
    from .labels.labelsets import get_labelset
    from .progress import Progress
    from .registry import load_model
    from .video.pipeline import render_video
    from .video.sequence import export_label_frames, load_sequence

    if not 0.0 <= args.stabilize <= 1.0:
        raise CLIError(f"--stabilize must be within 0..1, not {args.stabilize}")
    device = _device(args.device)
    model = load_model(args.model, device, labelset=args.labelset)
    ls = get_labelset(args.labelset) if args.labelset else model.labelset
    tl = load_sequence(args.labels_dir, ls, args.frames, fps=args.fps)
    tl.set_range(*_range(args.range, len(tl)))
    if args.hold:
        tl.keyframes = {i: True for i in tl.keyframes}
    n_missing = sum(1 for f in tl.frames if f.label_path is None)
    if n_missing:
        how = "held" if (args.hold or not tl.has_rgb) else "carried by flow"
        print(f"semstudio: {n_missing} of {len(tl)} frames have no label file: keyframe labels are {how}",
              file=sys.stderr)
        for r in tl.resolve():
            if r.void_fraction > 0.001:
                print(f"semstudio: note: {r.note()}", file=sys.stderr)
    if args.export_labels:
        paths = export_label_frames(tl, args.export_labels)
        print(f"wrote {len(paths)} label frames to {args.export_labels}")
    dned = None
    if args.edges == "dned":
        if model.family != "sflow" or not tl.has_rgb:
            raise CLIError("--edges dned needs an S-Flow model and --frames (the DNED reads the frames)")
        from .train.dned import bundled_dned

        dned = bundled_dned()
    rng = tl.frame_range()
    bar = Progress(len(rng), what="frame")
    res = render_video(tl, model, args.output, args.stabilize, args.seed, args.size,
                       progress=lambda frac, i: bar.update(round(frac * len(rng))), dned=dned,
                       edge_seed=args.edge_seed)
    sys.stderr.write("\n")
    for note in res.notes:
        print(f"semstudio: note: {note}", file=sys.stderr)
    print(f"wrote {res.output} ({res.frames} frames, {res.size[0]}x{res.size[1]}, {tl.fps:g} fps, "
          f"{res.fps:.1f} frames/s, model {model.name}, stabilisation {args.stabilize:g})")
    return 0


def _read_image(path: str, what: str):
    """An RGB photo as (H, W, 3) uint8, or one line saying why not."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError) as e:
        raise CLIError(f"{path}: not a readable {what} ({e})") from None


def _read_region_map(path: str | None):
    """A region map: integer ids from an indexed or greyscale PNG, else an (H, W, 3) colour mask."""
    import numpy as np
    from PIL import Image

    if path is None:
        return None
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "L", "I", "I;16"):
                return np.asarray(im).astype(np.int32)
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise CLIError(f"{path}: not a readable region map ({e})") from None


def _stylize_progress(stage: str, frac: float) -> None:
    if frac == 0.0 or stage != "smooth":
        print(f"  {stage} {'…' if frac == 0.0 else 'done'}", file=sys.stderr)


def run_stylize(content, style, content_labels, style_labels, smooth: str, model: str | None, device,
                precision: str = "auto"):
    from .models.photowct import load_photowct
    from .stylize.pipeline import PhotoWCT, StylizeError, stylize

    nets, _card = load_photowct(model)
    try:
        return stylize(PhotoWCT(nets, device, precision), content, style, content_labels, style_labels, smooth,
                       progress=_stylize_progress)
    except StylizeError as e:
        raise CLIError(f"semstudio stylize: {e}") from None


def cmd_edit(args) -> int:
    import numpy as np
    from PIL import Image

    from .labels import read_label_png, save_image_atomic
    from .text.edit import class_mask, edit, load_editor

    if not args.output.lower().endswith(".png"):
        raise CLIError(f"{args.output}: the edit is written as PNG; name the output *.png")
    img = _read_image(args.image, "photo")
    editor = load_editor(args.model, device=str(_device(args.device)))
    mask, where = None, ""
    if args.mask:
        try:
            with Image.open(args.mask) as im:
                m = np.asarray(im.convert("L"))
        except (OSError, ValueError) as e:
            raise CLIError(f"{args.mask}: not a readable mask ({e})") from None
        if m.shape != img.shape[:2]:
            raise CLIError(f"{args.mask}: mask is {m.shape[1]}x{m.shape[0]} but the image is "
                           f"{img.shape[1]}x{img.shape[0]}")
        mask, where = m > 0, f"inside {args.mask}"
    elif args.mask_class:
        labels = read_label_png(args.labels, editor.labelset) if args.labels else None
        mask, src = class_mask(editor, img, args.mask_class, labels)
        where = f"inside class '{args.mask_class}' ({100 * mask.mean():.1f}% of the image, from {src})"
        if not mask.any():
            print(f"semstudio edit: warning: class '{args.mask_class}' is not in the image; nothing to edit",
                  file=sys.stderr)
    if not 0.0 <= args.alpha <= 1.0:
        raise CLIError(f"--alpha must be within 0..1, not {args.alpha}")
    res = edit(editor, img, args.prompt, mask=mask, seed=args.seed, sample=not args.mean,
               prompt2=args.to, alpha=args.alpha if args.to else 0.0)
    for w in res.warnings:
        print(f"semstudio edit: warning: {w}", file=sys.stderr)
    save_image_atomic(Image.fromarray(res.image), args.output)
    print(f"wrote {args.output} ({img.shape[1]}x{img.shape[0]}); understood: {res.understood.summary()}"
          + (f"; edited {where}" if where else ""))
    return 0


def cmd_segment(args) -> int:
    import numpy as np

    from .labels import get_labelset
    from .labels.io import write_label_png
    from .models.segmenter import load_segmenter, segment_photo

    device = _device(args.device)
    photo = _read_image(args.photo, "photo")
    seg = load_segmenter(args.segmenter, device=device)
    labels = segment_photo(seg, photo)
    ls = get_labelset(seg.labelset)
    write_label_png(Path(args.output), labels, ls)
    counts = np.bincount(labels.reshape(-1), minlength=len(ls.names()))
    top = ", ".join(f"{ls.names()[i]} {100 * counts[i] / labels.size:.0f}%" for i in np.argsort(-counts)[:4] if counts[i])
    print(f"wrote {args.output} ({labels.shape[1]}x{labels.shape[0]}, {ls.name}): {top}")
    return 0


def cmd_stylize(args) -> int:
    from PIL import Image

    from .labels import save_image_atomic

    device = _device(args.device)
    content = _read_image(args.content, "content photo")
    style = _read_image(args.style, "style photo")
    c_lab, s_lab = _read_region_map(args.content_labels), _read_region_map(args.style_labels)
    if args.auto_labels and (c_lab is None or s_lab is None):
        from .models.segmenter import load_segmenter, segment_photo

        seg = load_segmenter(None, device=device)
        c_lab = segment_photo(seg, content) if c_lab is None else c_lab
        s_lab = segment_photo(seg, style) if s_lab is None else s_lab
    res = run_stylize(content, style, c_lab, s_lab, args.smooth, args.model, device, args.precision)
    out = Path(args.output)
    save_image_atomic(Image.fromarray(res.image), out)
    extra = f", {res.info['iterations']} CG iterations" if "iterations" in res.info else ""
    print(f"wrote {out} ({res.image.shape[1]}x{res.image.shape[0]}, smoothing {args.smooth}{extra}, "
          f"networks in {res.info['precision']})")
    return 0


def _card_beside(p: Path, info: dict) -> str:
    """Write card.json beside an inspected checkpoint (its folder becomes a model folder); never
    replaces a card that describes other weights. Returns the card path or why none was written."""
    from .cards import CARD_NAME, ModelError, inspected_hashes, make_card, read_card, write_card

    gen = Path(info["file"])
    target = gen.parent / CARD_NAME
    if target.exists():   # a card is the model's record (eval figures, training cost): never replaced here
        try:
            old = read_card(gen.parent)
        except ModelError:
            return f"not written: {target} exists and is not a Semantic Studio card"
        if old.get("files", {}).get("generator", {}).get("path") == gen.name:
            return f"kept: {target} already describes these weights"
        return f"not written: {target} describes other weights"
    files = {"generator": gen}
    if "encoder" in info:
        files["encoder"] = Path(info["encoder"]["file"])
    name = gen.parent.name if gen.name.endswith("_net_G.pth") else gen.stem
    known = inspected_hashes(info)
    card = make_card(name, info, files, known, official_options=info.get("official_options"),
                     preset=info.get("preset"))
    try:
        return str(write_card(gen.parent, card))
    except OSError as e:
        return f"not written: {e}"


def cmd_models(args) -> int:
    from .cards import inspect_file
    from .registry import catalog, import_model

    if args.models_cmd == "list":
        cat = catalog()
        if args.json:
            print(json.dumps(cat, indent=2))
            return 0
        for e in cat:
            res = "x".join(str(v) for v in e.get("resolution") or []) or "-"
            print(f"{e['name']:24s} {e['where']:7s} {e['state']:8s} {e.get('family') or '-':8s} "
                  f"{e.get('labelset') or '-':16s} {res:9s} {e['path']}")
            if e["detail"]:
                print(f"{'':24s} {e['detail']}")
        return 0
    if args.models_cmd == "import":
        dest = import_model(args.file, args.name, args.labelset)
        print(f"imported {dest}")
        return 0
    if args.models_cmd == "cluster":
        from .clusters import cluster_model

        if args.clusters < 1:
            raise CLIError("--clusters must be at least 1")

        def prog(i, n):
            sys.stderr.write(f"\rencoding {i}/{n}")
            sys.stderr.flush()

        res = cluster_model(args.model, args.data, args.split, args.clusters, args.limit, progress=prog)
        sys.stderr.write("\n")
        print(f"clustered {sum(res['classes'].values())} instances of {len(res['classes'])} classes "
              f"from {res['images']} photos; saved beside {args.model}")
        return 0
    if args.models_cmd == "inspect":
        info = inspect_file(args.file)
        p = Path(args.file)
        if not p.is_dir() and not args.no_card and info.get("role") == "generator":
            info["card"] = _card_beside(p, info)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            o = info["options"]
            print(f"family     {info['family']}")
            print(f"label set  {info.get('labelset') or 'unknown'}" + ("  (+ instance edges)" if info.get("instance_edge") else ""))
            if info.get("resolution"):
                print(f"resolution {info['resolution'][0]}x{info['resolution'][1]}")
            print(f"preset     {info.get('preset') or 'none'}")
            oo = info.get("official_options")
            if oo:
                print("official   " + " ".join(f"--{k} {v}" for k, v in oo.items()))
            else:
                print("options    " + ", ".join(f"{k}={v}" for k, v in o.items() if k != "blocks"))
            if "encoder" in info:
                print(f"encoder    {info['encoder']['file']}")
            if info.get("card"):
                print(f"card       {info['card']}")
            for w in info.get("warnings", []):
                print(f"warning    {w}")
        return 0
    raise CLIError("models needs a subcommand: list | inspect FILE | import FILE | cluster MODEL")


def cmd_eval(args) -> int:
    if args.text:
        return _eval_text(args)
    from .cards import load_card, write_card
    from .eval.protocol import Evaluator, markdown
    from .models.segmenter import load_segmenter
    from .registry import GENERATOR_FAMILIES, catalog, load_model, resolve_model

    seg = load_segmenter(args.segmenter)
    specs = args.model or [e["path"] for e in catalog() if e["where"] == "bundled" and e["state"] == "ok"
                           and e.get("family") in GENERATOR_FAMILIES and e.get("labelset") == seg.labelset]
    if not specs:
        raise CLIError(f"no bundled generator uses the segmenter's label set {seg.labelset}; name one with -m")
    paths = [resolve_model(m) for m in specs]

    def prog(stage, i, n):
        sys.stderr.write(f"\r{stage}: {i}/{n}   ")
        sys.stderr.flush()
        if i == n:
            sys.stderr.write("\n")

    ev = Evaluator(args.data, args.split, segmenter=seg, limit=args.limit, seeds=args.seeds,
                   fd_floor=not args.no_floor, progress=prog)
    if args.video:
        return _eval_video(args, ev, paths)
    rows = []
    for path in paths:
        model = load_model(path, _device(args.device))
        row = ev.evaluate(model)
        rows.append(row)
        if args.write_card:
            if not path.is_dir():
                raise CLIError(f"--write-card needs a model folder with a card ({path} is a file)")
            card = load_card(path)
            card.setdefault("eval", {})[f"{Path(args.data).name}:{args.split}"] = {
                "protocol": "semstudio eval (segmenter mIoU vs oracle, FD-VGG)", "segmenter": seg.name, **row}
            write_card(path, card)
    res = {"data": Path(args.data).name, "split": args.split, "images": rows[0]["images"], "segmenter": seg.name,
           "rows": rows}
    table = markdown(res)
    if args.markdown:
        from .labels.io import atomic_write_bytes
        atomic_write_bytes(Path(args.markdown), table.encode())
    print(json.dumps(res, indent=2) if args.json else table)
    return 0


def _eval_text(args) -> int:
    from .cards import load_card, write_card
    from .eval.text import evaluate_text, markdown_text
    from .registry import catalog
    from .text.edit import load_editor

    specs = args.model or [e["path"] for e in catalog() if e["where"] == "bundled" and e["state"] == "ok"
                           and e.get("family") == "simgan"]
    if not specs:
        raise CLIError("no text-edit (SIMGAN) model is bundled; name one with -m")

    def prog(stage, i, n):
        sys.stderr.write(f"\r{stage}: {i}/{n}   ")
        sys.stderr.flush()
        if i == n:
            sys.stderr.write("\n")

    results, tables = [], []
    for spec in specs:
        editor = load_editor(spec, device=str(_device(args.device)))
        res = evaluate_text(editor, args.data, args.split, args.size or (256, 192), args.limit, prog)
        results.append(res)
        tables.append(markdown_text(res))
        folder = Path(spec) if Path(spec).exists() else None
        if args.write_card and folder is not None and folder.is_dir():
            card = load_card(folder)
            card.setdefault("eval", {})[f"{Path(args.data).name}:{args.split}"] = {
                "protocol": "semstudio eval --text (held-out (class, colour) prompts)", **res}
            write_card(folder, card)
    if args.markdown:
        from .labels.io import atomic_write_bytes
        atomic_write_bytes(Path(args.markdown), "\n".join(tables).encode())
    print(json.dumps(results, indent=2) if args.json else "\n".join(tables))
    return 0


def _eval_video(args, ev, paths) -> int:
    from .cards import load_card, write_card
    from .eval.video import compare_to_baseline, evaluate_video, markdown_comparison, markdown_video
    from .registry import load_model

    if not 0.0 < args.stabilize <= 1.0:
        raise CLIError(f"--stabilize must be within 0..1 (and above 0 here), not {args.stabilize}")
    results, tables = [], []
    for path in paths:
        model = load_model(path, _device(args.device))
        res = evaluate_video(ev, model, args.size, args.stabilize)
        results.append(res)
        tables.append(markdown_video(res))
        if args.write_card and path.is_dir():
            card = load_card(path)
            card.setdefault("eval_video", {})[f"{Path(args.data).name}:{args.split}"] = res
            write_card(path, card)
    if len(results) > 1:
        tables.append(markdown_comparison(results))
    text = "\n".join(tables)
    if args.markdown:
        from .labels.io import atomic_write_bytes
        atomic_write_bytes(Path(args.markdown), text.encode())
    out = {"models": results, "against_first_per_frame": compare_to_baseline(results)}
    print(json.dumps(out, indent=2) if args.json else text)
    return 0


def cmd_train(args) -> int:
    from .train.distributed import Distributed

    dist = Distributed(args.distributed)
    try:
        return _train(args, dist)
    finally:
        dist.close()


def _train(args, dist) -> int:
    from .paths import resources_dir
    from .train.trainer import GANTrainer, TrainConfig, make_trainer

    overrides = {"steps": args.steps, "size": args.size, "batch": args.batch, "device": args.device,
                 "threads": args.threads, "lr_decay_from": args.lr_decay_from, "pair_warmup": args.pair_warmup}
    if args.resume:
        try:
            tr = GANTrainer.resume(args.out, overrides, dist=dist)
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from None
    else:
        if (Path(args.out) / "checkpoint.pt").exists():
            raise CLIError(f"{args.out} already holds a run; pass --resume to continue it")
        d: dict = {}
        if not args.data:
            raise CLIError("train needs --data DIR")
        presets = resources_dir() / "train_presets"
        preset = args.preset
        from .train.datasets import LAYOUT_LABELSETS, detect_layout

        layout = detect_layout(args.data)
        if not preset and not args.config:
            # the dataset's own preset for this family, when there is one (e.g. pix2pixhd_camvid_cpu)
            cand = f"{args.family}_{layout}_cpu"
            preset = cand if (presets / f"{cand}.json").exists() else None
        if preset:
            pp = presets / f"{preset}.json"
            if not pp.exists():
                known = ", ".join(sorted(p.stem for p in presets.glob("*.json")))
                raise CLIError(f"no training preset '{preset}' (known: {known})")
            d.update(json.loads(pp.read_text()))
            if d.get("family", args.family) != args.family:
                raise CLIError(f"preset '{preset}' trains {d['family']}, not {args.family}")
        if args.config:
            try:
                d.update(json.loads(Path(args.config).read_text()))
            except (OSError, json.JSONDecodeError) as e:
                raise CLIError(f"{args.config}: unreadable config ({e})") from None
        d = {k: v for k, v in d.items() if not k.startswith("_")}
        if d.get("family", args.family) != args.family:
            raise CLIError(f"the config trains {d['family']}, not {args.family}")
        d["family"] = args.family
        d["data"] = args.data
        if "labelset" not in d and layout in LAYOUT_LABELSETS:
            d["labelset"] = LAYOUT_LABELSETS[layout]          # the label set the dataset's files use
        for k, v in {**overrides, "seed": args.seed, "on_bad": args.on_bad, "limit": args.limit}.items():
            if v is not None:
                d[k] = list(v) if isinstance(v, tuple) else v
        try:
            tr = make_trainer(TrainConfig.from_dict(d), args.out, dist=dist)
        except ValueError as e:
            raise CLIError(str(e)) from None
    ck = tr.fit()
    if not dist.is_main:
        return 0
    print(f"checkpoint {ck} at step {tr.step}")
    if args.export:
        from .train.export import export_run

        card = export_run(args.out, args.export, Path(args.export).name)
        print(f"exported {args.export} ({card['files']['generator']['bytes']} bytes)")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .cards import ModelError
    from .labels import LabelIOError
    from .train.datasets import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.cmd == "generate":
            return cmd_generate(args)
        if args.cmd == "models":
            return cmd_models(args)
        if args.cmd == "train":
            return cmd_train(args)
        if args.cmd == "eval":
            return cmd_eval(args)
        if args.cmd == "stylize":
            return cmd_stylize(args)
        if args.cmd == "segment":
            return cmd_segment(args)
        if args.cmd == "video":
            return cmd_video(args)
        if args.cmd == "edit":
            return cmd_edit(args)
        raise CLIError("semstudio: choose a command: generate, stylize, edit, video, models, train, eval, bench (or none "
                       "for the editor)")
    except (CLIError, ModelError, LabelIOError, DatasetError, KeyError, FileNotFoundError) as e:
        msg = str(e).strip("'\"")
        print(msg if msg.startswith("semstudio") else f"semstudio: error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as e:
        print(f"semstudio: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("semstudio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

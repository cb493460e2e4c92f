"""Label-map sequence -> video: per-frame generation, optional temporal stabilisation, export.

One function, :func:`render_video`, serves the CLI (``semstudio video``), the worker's
:class:`~engine.api.VideoRequest` and ``semstudio eval --video``. It is cancellable between frames and
reports progress per frame.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .sequence import SequenceError, Timeline
from .temporal import Stabilizer


class VideoCancelled(Exception):
    pass


@dataclass
class VideoResult:
    frames: int
    size: tuple[int, int]
    seconds: float
    generate_seconds: float
    stabilize_seconds: float
    output: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def flow_image_at(tl: Timeline, i: int, size_wh: tuple[int, int]) -> np.ndarray:
    """The flow image of frame ``i`` (RGB frame, else colour-coded labels) at ``size_wh``."""
    from PIL import Image

    img = tl.flow_image(i)
    if img.shape[1::-1] == tuple(size_wh):
        return img
    resample = Image.BILINEAR if tl.frames[i].rgb_path is not None else Image.NEAREST
    return np.asarray(Image.fromarray(img).resize(tuple(size_wh), resample))


def render_frames(tl: Timeline, model, stabilize: float = 0.0, seed: int | None = 0,
                  size_wh: tuple[int, int] | None = None, frames: range | None = None, progress=None,
                  should_stop=None, flow_method: str = "dis", timings: dict | None = None, dned=None,
                  edge_seed: int | None = None, on_frame=None):
    """Yield (index, RGB uint8 frame) for the frames of ``frames`` (default: the timeline's range). The
    seed is the same for every frame (multimodal models keep one look); ``stabilize`` in 0..1. S-Flow
    models take their edge input from the RGB/CG frames when the timeline has them, else from the labels;
    with ``dned`` (a :class:`~engine.models.hed.DNED`) the frames' edges come from it, varied by
    ``edge_seed`` (one re-weighting of its sides for the whole video)."""
    from ..registry import StyleControls, generate

    rng = frames if frames is not None else tl.frame_range()
    edges_from_frames = getattr(model, "family", "") == "sflow"
    stab = Stabilizer(stabilize, flow_method) if stabilize > 0 else None
    t = timings if timings is not None else {}
    t.setdefault("generate", 0.0)
    t.setdefault("stabilize", 0.0)
    seed = 0 if seed is None else int(seed)
    for k, i in enumerate(rng):
        if should_stop is not None and should_stop():
            raise VideoCancelled()
        t0 = time.perf_counter()
        controls = None
        if edges_from_frames:
            rgb = tl.rgb(i)
            if dned is not None and rgb is not None:
                controls = StyleControls(edges=dned.edge_map(rgb, edge_seed))
            else:
                controls = StyleControls(frame=rgb)
        img = generate(model, tl.labels(i), None, seed, size_wh, controls=controls)
        t1 = time.perf_counter()
        t["generate"] += t1 - t0
        if stab is not None:
            img = stab.step(img, flow_image_at(tl, i, img.shape[1::-1]))
            t["stabilize"] += time.perf_counter() - t1
        if on_frame is not None:
            on_frame(i, img)
        if progress is not None:
            progress((k + 1) / len(rng), i)
        yield i, img


def render_video(tl: Timeline, model, output: Path | str, stabilize: float = 0.0, seed: int | None = 0,
                 size_wh: tuple[int, int] | None = None, progress=None, should_stop=None,
                 flow_method: str = "dis", dned=None, edge_seed: int | None = None, on_frame=None) -> VideoResult:
    """Render the timeline's range to ``output``: an ``.mp4`` file (H.264) or a folder of PNG frames."""
    from .export import Mp4Writer, write_png_frame

    out = Path(output)
    rng = tl.frame_range()
    missing = [tl.frames[i].name for i in rng if tl.frames[i].labels is None and tl.frames[i].label_path is None]
    if missing:
        raise SequenceError(f"{len(missing)} frame(s) have no labels (e.g. {missing[0]}): resolve the keyframes "
                            "first (propagate or hold)")
    timings: dict = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    gen = render_frames(tl, model, stabilize, seed, size_wh, rng, progress, should_stop, flow_method, timings,
                        dned, edge_seed, on_frame)
    n, size = 0, None
    if out.suffix.lower() == ".mp4":
        first_i, first = next(gen)
        size = (first.shape[1], first.shape[0])
        with Mp4Writer(out, size, tl.fps) as w:
            w.write(first)
            n = 1
            for _, img in gen:
                w.write(img)
                n += 1
        notes += w.notes
    elif out.suffix:
        raise SequenceError(f"{out.name}: export to an .mp4 file or to a folder of PNG frames")
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, img in gen:
            write_png_frame(out, i, img, tl.frames[i].name)
            size = (img.shape[1], img.shape[0])
            n += 1
    return VideoResult(frames=n, size=size, seconds=time.perf_counter() - t0,
                       generate_seconds=timings["generate"], stabilize_seconds=timings["stabilize"],
                       output=str(out), notes=notes)

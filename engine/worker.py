"""The engine worker: one thread that owns torch and runs requests one at a time.

- ``submit(request)`` queues a request and returns its job id; events (queued, started, progress,
  result, error, cancelled) are delivered to every listener, from the worker thread (the GUI's
  engine client turns them into queued Qt signals).
- Cancelling is cooperative: a queued job is dropped at once; a running job stops at its next
  ``ctx.check_cancelled()`` (between stages, frames or steps).
- A request with ``replace_key`` replaces queued requests with the same key (latest wins).
- An exception in a job becomes an ``error`` event; the worker keeps running.

Torch is imported on the worker thread at the first job, never at import time.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from typing import Callable

from .api import (CallableRequest, Event, GenerateRequest, GenerateResult, LoadModelRequest, Request, StylizeRequest,
                  TextEditRequest, VideoRequest, AutoLabelRequest, RegionRequest, UnloadRequest)


class Cancelled(Exception):
    pass


class JobContext:
    def __init__(self, worker: "Worker", req: Request):
        self.worker, self.req = worker, req
        self.cancel_event = threading.Event()

    @property
    def device(self):
        return self.worker.device

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def progress(self, fraction: float, stage: str | None = None, preview=None) -> None:
        self.check_cancelled()
        self.worker._emit(Event("progress", self.req.job_id, self.req.kind, progress=float(fraction),
                                stage=stage, preview=preview))

    def model(self, spec):
        return self.worker.get_model(spec)


class Worker:
    def __init__(self, device: str = "auto", name: str = "semstudio-engine"):
        self._device_name = device
        self.device = None
        self._queue: deque[Request] = deque()
        self._cv = threading.Condition()
        self._listeners: list[Callable[[Event], None]] = []
        self._current: tuple[Request, JobContext] | None = None
        self._stop = False
        self._manager = None
        self._photowct = None            # (spec, PhotoWCT) of the last stylization
        self._editor = None              # (spec, TextEditor) of the last text edit
        self._segmenter = None           # (spec, StreetSegmenter) of the last auto-label
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ---- public API ----------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[Event], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[Event], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def submit(self, req: Request) -> int:
        dropped = []
        with self._cv:
            if req.replace_key is not None:
                keep = deque()
                for q in self._queue:
                    (dropped if q.replace_key == req.replace_key else keep).append(q)
                self._queue = keep
            self._queue.append(req)
            self._cv.notify()
        for q in dropped:
            self._emit(Event("cancelled", q.job_id, q.kind))
        self._emit(Event("queued", req.job_id, req.kind))
        return req.job_id

    def cancel(self, job_id: int) -> bool:
        dropped = None
        with self._cv:
            for q in list(self._queue):
                if q.job_id == job_id:
                    self._queue.remove(q)
                    dropped = q
                    break
            if dropped is None and self._current and self._current[0].job_id == job_id:
                self._current[1].cancel_event.set()
                return True
        if dropped is not None:
            self._emit(Event("cancelled", dropped.job_id, dropped.kind))
            return True
        return False

    def cancel_all(self) -> None:
        with self._cv:
            ids = [q.job_id for q in self._queue] + ([self._current[0].job_id] if self._current else [])
        for i in ids:
            self.cancel(i)

    def busy(self) -> bool:
        with self._cv:
            return bool(self._queue) or self._current is not None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if not self.busy():
                return True
            time.sleep(0.005)
        return False

    def shutdown(self, timeout: float = 5.0) -> None:
        self.cancel_all()
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout)

    # ---- worker side ---------------------------------------------------------------------------
    def _emit(self, ev: Event) -> None:
        for fn in list(self._listeners):
            try:
                fn(ev)
            except Exception:  # noqa: BLE001 - a faulty listener must not kill the worker
                traceback.print_exc()

    @property
    def models(self):
        """The engine's :class:`~engine.manager.ModelManager` (LRU within a memory budget)."""
        if self._manager is None:
            from .manager import ModelManager

            self._manager = ModelManager(self.device)
        return self._manager

    def get_model(self, spec):
        return self.models.activate(spec)

    def _init_torch(self) -> None:
        if self.device is None:
            from .torch_preload import import_torch

            import_torch()          # libraries loaded without the GIL, no collector pause: the UI stays live
            from .devices import pick_device

            self.device = pick_device(self._device_name)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                req = self._queue.popleft()
                ctx = JobContext(self, req)
                self._current = (req, ctx)
            try:
                self._emit(Event("started", req.job_id, req.kind))
                self._init_torch()
                ctx.check_cancelled()
                result = self._dispatch(req, ctx)
                ctx.check_cancelled()
                self._emit(Event("result", req.job_id, req.kind, progress=1.0, result=result))
            except Cancelled:
                self._emit(Event("cancelled", req.job_id, req.kind))
            except Exception as e:  # noqa: BLE001 - every failure becomes an error event
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                self._emit(Event("error", req.job_id, req.kind, error=msg,
                                 result=traceback.format_exc()))
            finally:
                with self._cv:
                    self._current = None

    def _dispatch(self, req: Request, ctx: JobContext):
        if isinstance(req, GenerateRequest):
            return run_generate(req, ctx)
        if isinstance(req, LoadModelRequest):
            ctx.progress(0.0, "loading model")
            m = ctx.model(req.model)
            return {"name": m.name, "card": m.card, "device": str(self.device)}
        if isinstance(req, StylizeRequest):
            return run_stylize(req, ctx)
        if isinstance(req, VideoRequest):
            return run_video(req, ctx)
        if isinstance(req, TextEditRequest):
            return run_text_edit(req, ctx)
        if isinstance(req, AutoLabelRequest):
            return run_autolabel(req, ctx)
        if isinstance(req, RegionRequest):
            return run_region(req, ctx)
        if isinstance(req, UnloadRequest):
            names = self._manager.resident() if self._manager is not None else []
            names += [n for n, held in (("photowct", self._photowct), ("text editor", self._editor),
                                        ("segmenter", self._segmenter)) if held is not None]
            self._photowct = self._editor = self._segmenter = None
            if self._manager is not None:
                self._manager.clear()
            return names
        if isinstance(req, CallableRequest):
            return req.fn(ctx)
        raise TypeError(f"no handler for {req.kind}")

    def text_editor(self, spec):
        """The SIMGAN editor for ``spec`` (kept for the next request; one at a time)."""
        key = str(spec)
        if self._editor is None or self._editor[0] != key:
            from .text.edit import load_editor

            self._editor = (key, load_editor(spec, device=str(self.device)))
        return self._editor[1]

    def segmenter(self, spec):
        key = str(spec)
        if self._segmenter is None or self._segmenter[0] != key:
            from .models.segmenter import load_segmenter

            self._segmenter = (key, load_segmenter(spec, device=self.device))
        return self._segmenter[1]

    def photowct(self, spec):
        """The PhotoWCT networks for ``spec`` (kept for the next request; one at a time)."""
        key = str(spec)
        if self._photowct is None or self._photowct[0] != key:
            from .models.photowct import load_photowct
            from .stylize.pipeline import PhotoWCT

            nets, _card = load_photowct(spec)
            self._photowct = (key, PhotoWCT(nets, self.device))
        return self._photowct[1]


STYLIZE_STAGES = {"encode": (0.05, 0.1), "wct4": (0.1, 0.45), "wct3": (0.45, 0.6), "wct2": (0.6, 0.68),
                  "wct1": (0.68, 0.72), "smooth": (0.72, 1.0)}


def run_stylize(req: StylizeRequest, ctx: JobContext):
    """PhotoWCT + smoothing; progress per stage (and through the smoothing solve), cancellable."""
    from .stylize.pipeline import Cancelled as StylizeCancelled
    from .stylize.pipeline import stylize

    t0 = time.perf_counter()
    c_lab, s_lab = req.content_labels, req.style_labels
    if req.auto_labels and (c_lab is None or s_lab is None):
        from .models.segmenter import segment_photo

        ctx.progress(0.0, "labelling the photos for region-wise transfer")
        seg = ctx.worker.segmenter(None)
        c_lab = segment_photo(seg, req.content) if c_lab is None else c_lab
        s_lab = segment_photo(seg, req.style) if s_lab is None else s_lab
    ctx.progress(0.0, "loading PhotoWCT")
    wct = ctx.worker.photowct(req.model)

    def progress(stage, frac):
        a, b = STYLIZE_STAGES.get(stage, (0.0, 1.0))
        ctx.progress(min(0.99, a + (b - a) * frac), stage)
    try:
        res = stylize(wct, req.content, req.style, c_lab, s_lab, req.smooth,
                      progress=progress, should_stop=ctx.cancel_event.is_set)
    except StylizeCancelled:
        raise Cancelled() from None
    res.info["seconds"] = time.perf_counter() - t0
    return res


def run_text_edit(req: TextEditRequest, ctx: JobContext):
    """Prompt -> edited image; the text encoder loads on first use (progress says so)."""
    from .text.edit import class_mask, edit
    from .text.encoder import text_encoder

    ctx.progress(0.0, "loading text-edit model")
    ed = ctx.worker.text_editor(req.model)
    ctx.progress(0.2, "loading text encoder")
    text_encoder()
    ctx.check_cancelled()
    mask = req.mask
    if mask is None and req.mask_class:
        ctx.progress(0.4, f"finding '{req.mask_class}'")
        mask, _src = class_mask(ed, req.image, req.mask_class, req.labels)
    ctx.progress(0.6, "editing")
    return edit(ed, req.image, req.prompt, mask=mask, seed=req.seed, sample=req.sample, prompt2=req.prompt2,
                alpha=req.alpha)


def run_autolabel(req: AutoLabelRequest, ctx: JobContext):
    from .models.segmenter import segment_photo

    ctx.progress(0.0, "loading segmenter")
    seg = ctx.worker.segmenter(req.segmenter)
    ctx.progress(0.3, "labelling photo")
    return segment_photo(seg, req.photo)


def run_region(req: RegionRequest, ctx: JobContext):
    from .regen import regenerate_region

    ctx.progress(0.0, "loading model")
    model = ctx.model(req.model)
    ctx.progress(0.3, "regenerating region")
    return regenerate_region(model, req.photo, req.labels, req.mask, seed=req.seed, blend=req.blend)


def run_video(req: VideoRequest, ctx: JobContext):
    """A timeline to a video; progress per frame (with the frame as preview), cancellable between frames."""
    from .video.pipeline import VideoCancelled, render_video

    tl = req.timeline
    if any(tl.frames[i].labels is None and tl.frames[i].label_path is None for i in tl.frame_range()):
        ctx.progress(0.0, "propagating keyframes")          # frames between keyframes are filled first
        tl.resolve(should_stop=ctx.cancel_event.is_set)
        ctx.check_cancelled()
    ctx.progress(0.0, "loading model")
    model = ctx.model(req.model)
    last: dict = {}
    try:
        return render_video(req.timeline, model, req.output, req.stabilize, req.seed, req.size,
                            progress=lambda frac, i: ctx.progress(frac, f"frame {i + 1}", preview=last.pop(i, None)),
                            should_stop=ctx.cancel_event.is_set,
                            on_frame=lambda i, img: last.__setitem__(i, (i, img)))
    except VideoCancelled:
        raise Cancelled() from None


def run_generate(req: GenerateRequest, ctx: JobContext) -> GenerateResult:
    from .registry import generate

    t0 = time.perf_counter()
    ctx.progress(0.0, "loading model")
    model = ctx.model(req.model)
    ctx.progress(0.3, "generating")
    notes: list[str] = []
    img = generate_with_fallback(model, notes, lambda m: generate(m, req.labels, req.instances, req.seed, req.size,
                                                                   controls=req.controls))
    return GenerateResult(image=img, model_name=model.name, seconds=time.perf_counter() - t0,
                          device=str(model.device), size=(img.shape[1], img.shape[0]), notes=notes)


def generate_with_fallback(model, notes: list[str], run):
    """Run ``run(model)``; on an accelerator out-of-memory error, free the cache and retry on the CPU,
    noting it for the user (the model moves back to its device afterwards)."""
    from .devices import is_oom

    try:
        return run(model)
    except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
        if not is_oom(e) or getattr(model.device, "type", "cpu") == "cpu":
            raise
    import torch

    dev = model.device
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    notes.append(f"out of memory on {dev}; this image was made on the CPU instead (slower)")
    model.to(torch.device("cpu"))
    try:
        return run(model)
    finally:
        model.to(dev)

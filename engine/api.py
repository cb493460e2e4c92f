"""Requests in, events out: the one contract between callers (GUI, CLI, tests) and the worker.

Pure dataclasses; importing this module imports neither torch nor Qt.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_ids = itertools.count(1)


def next_job_id() -> int:
    return next(_ids)


@dataclass
class Request:
    """Base of every job request. ``replace_key``: a queued job with the same key is dropped
    (cancelled) when this one is submitted — "latest wins" for live previews."""

    replace_key: str | None = field(default=None, kw_only=True)
    job_id: int = field(default_factory=next_job_id, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass
class GenerateRequest(Request):
    labels: np.ndarray                        # (H, W) label-set indices
    model: str | None = None                  # model folder, checkpoint or bundled name; None = demo
    instances: np.ndarray | None = None
    seed: int | None = None
    size: tuple[int, int] | None = None       # (W, H) output size; None = model's native resolution
    controls: Any = None                      # registry.StyleControls (style photo, per-class/instance styles)


@dataclass
class StylizeRequest(Request):
    """Photorealistic stylization of ``content`` by ``style`` (both (H, W, 3) uint8 RGB)."""

    content: np.ndarray
    style: np.ndarray
    content_labels: np.ndarray | None = None  # region maps (ids or colour masks), both or neither
    style_labels: np.ndarray | None = None
    smooth: str = "exact"                     # exact | fast | none
    model: str | None = None                  # PhotoWCT model folder / photo_wct.pth; None = bundled
    auto_labels: bool = False                 # region-wise: label missing maps with the street segmenter


@dataclass
class VideoRequest(Request):
    """Render a timeline (engine.video.sequence.Timeline) to ``output`` (.mp4 or a PNG folder); progress per
    frame, cancellable between frames. The result is an engine.video.pipeline.VideoResult."""

    timeline: Any
    output: str
    model: str | None = None
    stabilize: float = 0.6
    seed: int | None = 0
    size: tuple[int, int] | None = None


@dataclass
class TextEditRequest(Request):
    """A text-guided edit of ``image`` ((H, W, 3) uint8) by a SIMGAN model; the result is an
    engine.text.edit.EditResult (image, what the prompt was understood as, warnings)."""

    image: np.ndarray
    prompt: str
    mask: np.ndarray | None = None            # (H, W) bool region limit; outside stays bit-identical
    mask_class: str | None = None             # or a class, from ``labels`` / the segmenter's auto-labels
    labels: np.ndarray | None = None
    seed: int = 0
    sample: bool = True
    prompt2: str | None = None                # interpolation target
    alpha: float = 0.0
    model: str | None = None                  # SIMGAN folder or name; None = bundled


@dataclass
class AutoLabelRequest(Request):
    """Label a street photo with the segmenter; the result is an (H, W) int32 label map."""

    photo: np.ndarray
    segmenter: str | None = None              # model folder; None = the bundled camvid_segmenter


@dataclass
class RegionRequest(Request):
    """Regenerate only ``mask`` of ``photo`` from ``labels`` (engine.regen); the result is a RegionResult."""

    photo: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    model: str | None = None
    seed: int = 0
    blend: str = "feather"                    # feather | seamless


@dataclass
class LoadModelRequest(Request):
    model: str | None = None


@dataclass
class UnloadRequest(Request):
    """Release every resident model (generators, stylizer, text editor, segmenter) and their memory."""


@dataclass
class CallableRequest(Request):
    """Run ``fn(ctx)`` on the worker (tests, benchmarks, later engine features)."""

    fn: Any = None
    name: str = "task"


EVENT_KINDS = ("queued", "started", "progress", "result", "error", "cancelled")


@dataclass
class Event:
    kind: str                  # one of EVENT_KINDS
    job_id: int
    request_kind: str = ""
    progress: float | None = None
    stage: str | None = None
    result: Any = None
    error: str | None = None
    preview: Any = None

    def __post_init__(self):
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind}")


@dataclass
class GenerateResult:
    image: np.ndarray          # (h, w, 3) uint8
    model_name: str
    seconds: float
    device: str
    size: tuple[int, int]
    notes: list[str] = field(default_factory=list)   # e.g. "out of memory on cuda; made on the CPU"

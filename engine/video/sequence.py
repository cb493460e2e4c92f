"""The timeline engine: a label-map sequence with optional RGB/CG frames, keyframes and a range.

- A :class:`Timeline` holds frames (each a label file or array and, optionally, the matching RGB/CG frame
  that supplies edges and flow), an fps, keyframes with a *hold* flag, and a range (start, end).
- :func:`load_sequence` imports a folder of label frames, optionally with a folder of frames matched by
  file stem. With frames, the frame folder defines the timeline and label files are its keyframes (a
  label for every frame is the common case: every frame is a keyframe).
- :meth:`Timeline.resolve` fills the frames between keyframes: a *hold* keyframe is copied until the
  next keyframe; otherwise labels travel by flow-warping with nearest sampling, forward from the keyframe
  before and backward from the keyframe after, each pixel taking the nearer keyframe whose chain kept it
  visible (forward-backward test). Where neither chain sees a pixel (occlusions, content entering the
  frame) the label is left void and the frame's report says how much.
- :func:`export_label_frames` writes label frames as lossless indexed PNGs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..labels.io import LabelIOError, open_image, read_label_png, write_label_png
from ..labels.labelsets import LabelSet
from .flow import dense_flow, occlusion_mask, warp

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class SequenceError(ValueError):
    """Bad sequence input: missing frames, mismatched sizes, an empty folder."""


def natural_key(name: str):
    """'frame2' before 'frame10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: Path | str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise SequenceError(f"{folder}: not a folder")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    return sorted(files, key=lambda p: natural_key(p.name))


@dataclass
class Frame:
    name: str
    label_path: Path | None = None
    rgb_path: Path | None = None
    labels: np.ndarray | None = None          # set for keyframes edited in memory and for resolved frames
    source: str = "file"                      # file | keyframe | hold | propagated | missing
    void_fraction: float = 0.0                # share of pixels no keyframe chain reached (propagated frames)


@dataclass
class FrameReport:
    index: int
    name: str
    source: str
    void_fraction: float

    def note(self) -> str:
        if self.void_fraction <= 0:
            return f"{self.name}: {self.source}"
        return (f"{self.name}: {self.source}; {100 * self.void_fraction:.1f}% of pixels left void "
                "(occluded or entering the frame in both directions)")


@dataclass
class Timeline:
    labelset: LabelSet
    size: tuple[int, int]                     # (W, H) of every frame
    frames: list[Frame] = field(default_factory=list)
    fps: float = 15.0
    keyframes: dict[int, bool] = field(default_factory=dict)   # index -> hold
    start: int = 0
    end: int | None = None                    # exclusive; None = through the last frame

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_rgb(self) -> bool:
        return bool(self.frames) and all(f.rgb_path is not None for f in self.frames)

    def frame_range(self) -> range:
        end = len(self.frames) if self.end is None else min(self.end, len(self.frames))
        if not 0 <= self.start < max(end, 1):
            raise SequenceError(f"range {self.start}..{end} is empty or outside 0..{len(self.frames)}")
        return range(self.start, end)

    def set_range(self, start: int, end: int | None) -> None:
        n = len(self.frames)
        if not (0 <= start < n) or (end is not None and not start < end <= n):
            raise SequenceError(f"range {start}..{end} is outside the {n} frames")
        self.start, self.end = start, end

    # -- keyframes -----------------------------------------------------------------------------------
    def set_keyframe(self, i: int, labels: np.ndarray | None = None, hold: bool = False) -> None:
        """Make frame ``i`` a keyframe (with new labels, or the ones it has); ``hold`` copies it forward
        until the next keyframe instead of propagating it by flow."""
        f = self.frames[i]
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (self.size[1], self.size[0]):
                raise SequenceError(f"keyframe labels {labels.shape[::-1]} do not match the sequence's "
                                    f"{self.size[0]}x{self.size[1]}")
            f.labels, f.source = labels.astype(np.int32), "keyframe"
        elif f.label_path is None and f.source not in ("keyframe", "file"):
            raise SequenceError(f"frame {f.name} has no labels to be a keyframe")
        self.keyframes[i] = bool(hold)
        self._invalidate()

    # -- editing the strip ---------------------------------------------------------------------------
    def insert_frame(self, i: int, labels: np.ndarray | None = None, name: str | None = None) -> None:
        """Insert a frame before index ``i`` (``len`` appends): a keyframe with ``labels``, or an empty
        frame to be filled by propagation. Later keyframes and the range move with their frames."""
        if not 0 <= i <= len(self.frames):
            raise SequenceError(f"cannot insert at {i}: the timeline has {len(self.frames)} frames")
        taken = {f.name for f in self.frames}
        base = name or f"frame_{i:05d}"
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        self.frames.insert(i, Frame(name, source="missing"))
        self.keyframes = {(j + 1 if j >= i else j): h for j, h in self.keyframes.items()}
        if self.end is not None and self.end > i:
            self.end += 1
        if self.start > i:
            self.start += 1
        if labels is not None:
            self.set_keyframe(i, labels)
        else:
            self._invalidate()

    def duplicate_frame(self, i: int) -> None:
        """A copy of frame ``i`` (its labels as a keyframe) right after it."""
        self.insert_frame(i + 1, self.labels(i).copy(), name=self.frames[i].name + "_copy")

    def delete_frame(self, i: int) -> None:
        if not 0 <= i < len(self.frames):
            raise SequenceError(f"no frame {i}")
        if len(self.frames) == 1:
            raise SequenceError("a timeline keeps at least one frame")
        del self.frames[i]
        self.keyframes = {(j - 1 if j > i else j): h for j, h in self.keyframes.items() if j != i}
        if self.end is not None and self.end > i:
            self.end = max(self.start + 1, self.end - 1)
        if self.start > i or self.start >= len(self.frames):
            self.start = max(0, self.start - 1)
        self._invalidate()

    def clear_keyframe(self, i: int) -> None:
        self.keyframes.pop(i, None)
        f = self.frames[i]
        f.labels, f.label_path, f.source = None, None, "missing"
        self._invalidate()

    def _invalidate(self) -> None:
        for i, f in enumerate(self.frames):
            if i not in self.keyframes and f.source in ("hold", "propagated"):
                f.labels, f.source, f.void_fraction = None, "missing", 0.0

    # -- frame data ----------------------------------------------------------------------------------
    def labels(self, i: int) -> np.ndarray:
        f = self.frames[i]
        if f.labels is not None:
            return f.labels
        if f.label_path is not None:
            return read_label_png(f.label_path, self.labelset)
        raise SequenceError(f"frame {f.name} has no labels yet: resolve the timeline (keyframes) first")

    def rgb(self, i: int) -> np.ndarray | None:
        f = self.frames[i]
        if f.rgb_path is None:
            return None
        return np.asarray(open_image(f.rgb_path).convert("RGB"))

    def flow_image(self, i: int) -> np.ndarray:
        """What flow is computed on: the RGB/CG frame, else the colour-coded labels."""
        rgb = self.rgb(i)
        if rgb is not None:
            return rgb
        return self.labelset.palette()[self.labels(i)]

    # -- filling frames between keyframes --------------------------------------------------------------
    def resolve(self, method: str = "dis", progress=None, should_stop=None) -> list[FrameReport]:
        """Fill every frame that is not a keyframe (see the module's docstring). Returns a report per
        filled frame. Without RGB frames there is no flow: keyframes hold."""
        keys = sorted(self.keyframes)
        if not keys:
            raise SequenceError("the timeline has no keyframes (no label frames)")
        n = len(self.frames)
        todo = [i for i in range(n) if i not in self.keyframes and self.frames[i].labels is None]
        reports: list[FrameReport] = []
        if not todo:
            return reports
        flows = _FlowCache(self, method)
        fwd: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        bwd: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        void = self.labelset.void_index if self.labelset.void_index is not None else self.labelset.erase_index
        done = 0
        for seg_start, seg_end in _segments(keys, n):
            # frames seg_start+1 .. seg_end-1 lie between keyframes seg_start (or none: -1) and seg_end (or n)
            inner = [i for i in range(seg_start + 1, seg_end) if i in todo]
            if not inner:
                continue
            hold = seg_start >= 0 and self.keyframes[seg_start]
            if hold or not self.has_rgb:
                src = seg_start if seg_start >= 0 else seg_end
                lab = self.labels(src)
                for i in inner:
                    self._fill(i, lab.copy(), "hold", 0.0)
                    reports.append(FrameReport(i, self.frames[i].name, "hold", 0.0))
                    done += 1
                    if progress:
                        progress(done / len(todo))
                continue
            if seg_start >= 0:                       # forward chain from the keyframe before
                lab, ok = self.labels(seg_start), np.ones((self.size[1], self.size[0]), bool)
                for i in inner:
                    if should_stop and should_stop():
                        return reports
                    f, valid = flows.get(i, i - 1)
                    lab, ok = warp(lab, f, nearest=True), warp(ok.astype(np.uint8), f, nearest=True).astype(bool) & valid
                    fwd[i] = (lab, ok)
            if seg_end < n:                          # backward chain from the keyframe after
                lab, ok = self.labels(seg_end), np.ones((self.size[1], self.size[0]), bool)
                for i in reversed(inner):
                    if should_stop and should_stop():
                        return reports
                    f, valid = flows.get(i, i + 1)
                    lab, ok = warp(lab, f, nearest=True), warp(ok.astype(np.uint8), f, nearest=True).astype(bool) & valid
                    bwd[i] = (lab, ok)
            for i in inner:
                out = np.full((self.size[1], self.size[0]), void, np.int32)
                have = np.zeros(out.shape, bool)
                near_fwd = seg_end >= n or (seg_start >= 0 and i - seg_start <= seg_end - i)
                order = [fwd.get(i), bwd.get(i)] if near_fwd else [bwd.get(i), fwd.get(i)]
                for chain in order:
                    if chain is None:
                        continue
                    lab, ok = chain
                    take = ok & ~have
                    out[take] = lab[take]
                    have |= take
                vf = float(1.0 - have.mean())
                self._fill(i, out, "propagated", vf)
                reports.append(FrameReport(i, self.frames[i].name, "propagated", vf))
                fwd.pop(i, None)
                bwd.pop(i, None)
                done += 1
                if progress:
                    progress(done / len(todo))
        return reports

    def _fill(self, i: int, labels: np.ndarray, source: str, void_fraction: float) -> None:
        f = self.frames[i]
        f.labels, f.source, f.void_fraction = labels, source, void_fraction


def _segments(keys: list[int], n: int):
    """(previous keyframe or -1, next keyframe or n) around each run of non-keyframes."""
    bounds = [-1] + keys + [n]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b - a > 1]


class _FlowCache:
    """flow(i, j) on the timeline's flow images with its validity mask (forward-backward test)."""

    def __init__(self, tl: Timeline, method: str):
        self.tl, self.method = tl, method
        self.images: dict[int, np.ndarray] = {}

    def _img(self, i: int) -> np.ndarray:
        if i not in self.images:
            if len(self.images) > 4:
                self.images.pop(next(iter(self.images)))
            self.images[i] = self.tl.flow_image(i)
        return self.images[i]

    def get(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self._img(i), self._img(j)
        f = dense_flow(a, b, self.method)
        g = dense_flow(b, a, self.method)
        return f, ~occlusion_mask(f, g)


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with open_image(path) as im:
            return im.size
    except LabelIOError as e:
        raise SequenceError(str(e)) from None


def load_sequence(label_dir: Path | str, labelset: LabelSet, frames_dir: Path | str | None = None,
                  fps: float = 15.0) -> Timeline:
    """A timeline from a folder of label frames and, optionally, a folder of RGB/CG frames matched by file
    stem (see the module's docstring). Sizes are checked up front; problems name the files."""
    if fps <= 0:
        raise SequenceError(f"fps must be positive, not {fps}")
    labels = list_images(label_dir)
    if not labels:
        raise SequenceError(f"{label_dir}: no label frames (png/jpg/bmp/tif/webp)")
    by_stem = {p.stem: p for p in labels}
    if len(by_stem) != len(labels):
        raise SequenceError(f"{label_dir}: two label files share a name stem")
    if frames_dir is not None:
        rgbs = list_images(frames_dir)
        if not rgbs:
            raise SequenceError(f"{frames_dir}: no frames")
        rgb_stems = {p.stem for p in rgbs}
        orphans = [s for s in by_stem if s not in rgb_stems]
        if orphans:
            shown = ", ".join(sorted(orphans, key=natural_key)[:3])
            raise SequenceError(f"{len(orphans)} label frame(s) have no matching frame in {frames_dir} "
                                f"(e.g. {shown})")
        frames = [Frame(p.stem, by_stem.get(p.stem), p, source="file" if p.stem in by_stem else "missing")
                  for p in rgbs]
    else:
        frames = [Frame(p.stem, p) for p in labels]
    size = _image_size(frames[0].label_path or frames[0].rgb_path)
    for f in frames:
        for p in (f.label_path, f.rgb_path):
            if p is not None and _image_size(p) != size:
                s = _image_size(p)
                raise SequenceError(f"{p.name} is {s[0]}x{s[1]}, but the sequence is {size[0]}x{size[1]} "
                                    f"(from {(frames[0].label_path or frames[0].rgb_path).name})")
    tl = Timeline(labelset, size, frames, fps=fps)
    tl.keyframes = {i: False for i, f in enumerate(frames) if f.label_path is not None}
    return tl


def frames_sequence(frames_dir: Path | str, labelset: LabelSet, fps: float = 15.0) -> Timeline:
    """A timeline of RGB/CG frames with no labels yet: paint keyframes on it, then propagate."""
    if fps <= 0:
        raise SequenceError(f"fps must be positive, not {fps}")
    rgbs = list_images(frames_dir)
    if not rgbs:
        raise SequenceError(f"{frames_dir}: no frames (png/jpg/bmp/tif/webp)")
    size = _image_size(rgbs[0])
    for p in rgbs:
        if _image_size(p) != size:
            s = _image_size(p)
            raise SequenceError(f"{p.name} is {s[0]}x{s[1]}, but the sequence is {size[0]}x{size[1]}")
    return Timeline(labelset, size, [Frame(p.stem, None, p, source="missing") for p in rgbs], fps=fps)


def export_label_frames(tl: Timeline, out_dir: Path | str, frames: range | None = None) -> list[Path]:
    """Write the label frames of ``frames`` (default: the timeline's range) as lossless indexed PNGs named
    after the frames. Unresolved frames are an error."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in frames if frames is not None else tl.frame_range():
        p = out / f"{tl.frames[i].name}.png"
        write_label_png(p, tl.labels(i), tl.labelset)
        paths.append(p)
    return paths

"""Video export: MP4 (H.264, yuv420p) through imageio-ffmpeg's bundled ffmpeg, and PNG sequences.

H.264 in yuv420p needs even width and height. An odd-sized sequence is padded by one replicated row
and/or column (never rescaled), and the writer says so in its ``notes``. Files are written under a
temporary name and renamed when complete, so a cancelled or failed export leaves no half file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..labels.io import new_file_mode, save_image_atomic


class ExportError(ValueError):
    pass


def even_size(w: int, h: int) -> tuple[int, int]:
    return w + (w % 2), h + (h % 2)


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ExportError("MP4 export needs the imageio-ffmpeg package (installed with Semantic Studio)") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()      # its own binary, else the system's ffmpeg
    except RuntimeError:
        raise ExportError("MP4 export needs ffmpeg: install your system's ffmpeg package "
                          "(or export PNG frames instead)") from None


class Mp4Writer:
    """``with Mp4Writer(path, (w, h), fps) as w: w.write(frame) ...``; frames are (h, w, 3) uint8 RGB.
    On an exception inside the block the partial file is removed."""

    def __init__(self, path: Path | str, size_wh: tuple[int, int], fps: float, quality: float = 8.0):
        self.path = Path(path)
        self.size = (int(size_wh[0]), int(size_wh[1]))
        if self.size[0] < 2 or self.size[1] < 2:
            raise ExportError(f"video size {self.size[0]}x{self.size[1]} is too small")
        if fps <= 0:
            raise ExportError(f"fps must be positive, not {fps}")
        self.fps = float(fps)
        self.quality = quality
        self.out_size = even_size(*self.size)
        self.notes: list[str] = []
        if self.out_size != self.size:
            self.notes.append(f"{self.size[0]}x{self.size[1]} is odd-sized; exported as "
                              f"{self.out_size[0]}x{self.out_size[1]} (edge row/column added: H.264 yuv420p "
                              "needs even sizes)")
        self.frames = 0
        self._gen = None
        self._tmp = None

    def __enter__(self) -> "Mp4Writer":
        import imageio_ffmpeg

        ffmpeg_exe()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".mp4", dir=self.path.parent)
        os.close(fd)
        os.chmod(tmp, new_file_mode())
        self._tmp = Path(tmp)
        self._gen = imageio_ffmpeg.write_frames(str(self._tmp), self.out_size, fps=self.fps, codec="libx264",
                                                pix_fmt_out="yuv420p", quality=self.quality,
                                                macro_block_size=2, ffmpeg_log_level="error",
                                                output_params=["-movflags", "+faststart"])
        self._gen.send(None)
        return self

    def write(self, frame: np.ndarray) -> None:
        f = np.asarray(frame)
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ExportError(f"frames must be (h, w, 3) uint8 RGB, not {f.shape} {f.dtype}")
        if f.shape[1::-1] != self.size:
            raise ExportError(f"frame {self.frames} is {f.shape[1]}x{f.shape[0]}, the video "
                              f"{self.size[0]}x{self.size[1]}")
        self._gen.send(np.ascontiguousarray(_pad_even(f)))
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._gen.close()
        finally:
            if exc_type is None and self.frames > 0:
                os.replace(self._tmp, self.path)
            else:
                self._tmp.unlink(missing_ok=True)
        if exc_type is None and self.frames == 0:
            raise ExportError("no frames to export")


def probe_mp4(path: Path | str) -> dict:
    """Decode an MP4 back: {frames, size (w, h), fps}: proof that it plays."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = gen.__next__()
    n = 0
    for _ in gen:
        n += 1
    return {"frames": n, "size": tuple(meta["size"]), "fps": float(meta.get("fps", 0.0)),
            "codec": meta.get("codec", "")}


def write_png_frame(out_dir: Path | str, index: int, frame: np.ndarray, name: str | None = None) -> Path:
    """One frame of a PNG sequence, written atomically as ``<name or %05d>.png``."""
    from PIL import Image

    p = Path(out_dir) / f"{name if name else f'{index:05d}'}.png"
    save_image_atomic(Image.fromarray(np.asarray(frame, dtype=np.uint8)), p)
    return p

"""A one-line text progress bar for long CLI work (training steps, video frames)."""
from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress bar with rate and ETA on stderr."""

    def __init__(self, total: int, start: int = 0, stream=sys.stderr, width: int = 24, what: str = "step"):
        self.total, self.start, self.stream, self.width, self.what = total, start, stream, width, what
        self.t0 = time.perf_counter()

    def eta(self, step: int) -> tuple[float, float]:
        done = max(step - self.start, 1)
        rate = (time.perf_counter() - self.t0) / done
        return rate, rate * max(self.total - step, 0)

    def update(self, step: int, extra: str = "") -> str:
        rate, eta = self.eta(step)
        frac = step / max(self.total, 1)
        bar = "#" * int(frac * self.width) + "." * (self.width - int(frac * self.width))
        h, rem = divmod(int(eta), 3600)
        line = f"\r{self.what} {step}/{self.total} [{bar}] {rate:.2f} s/it ETA {h}:{rem // 60:02d}:{rem % 60:02d} {extra}"
        self.stream.write(line)
        self.stream.flush()
        return line

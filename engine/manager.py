"""Resident models: load on demand, keep the recently used ones within a memory budget.

The engine thread owns one :class:`ModelManager`. ``activate`` makes a model current; when loading
fails (a corrupt file, a label-set mismatch, out of memory) the previous model stays current and
loaded, and the error says why. Least recently used models are unloaded when the weights of the
resident models exceed the budget; the current model is never unloaded to make room.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any


def default_budget_bytes() -> int:
    """Half of physical memory (at least 1 GiB); override with SEMSTUDIO_MODEL_BUDGET_MB."""
    env = os.environ.get("SEMSTUDIO_MODEL_BUDGET_MB")
    if env:
        return int(float(env) * 2**20)
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = 8 * 2**30
    return max(2**30, total // 2)


class ModelManager:
    def __init__(self, device=None, budget_bytes: int | None = None, loader=None):
        self.device = device
        self.budget = default_budget_bytes() if budget_bytes is None else int(budget_bytes)
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._current: str | None = None
        self._lock = threading.RLock()
        self._loader = loader
        self.log: list[str] = []   # what was unloaded and why (shown by the editor's status line)

    @staticmethod
    def key(spec) -> str:
        from .registry import resolve_model

        return str(Path(resolve_model(spec)).resolve())

    @property
    def current(self):
        with self._lock:
            return self._models.get(self._current) if self._current else None

    def resident(self) -> list[str]:
        with self._lock:
            return [m.name for m in self._models.values()]

    def resident_bytes(self) -> int:
        with self._lock:
            return sum(getattr(m, "nbytes", 0) for m in self._models.values())

    def get(self, spec, labelset: str | None = None):
        """The loaded model for ``spec`` (loading it if needed) without changing the current one."""
        with self._lock:
            k = self.key(spec)
            if k in self._models:
                self._models.move_to_end(k)
                return self._models[k]
            load = self._loader
            if load is None:
                from .registry import load_model as load
            model = load(spec, self.device, labelset=labelset) if labelset else load(spec, self.device)
            self._models[k] = model
            self._evict(keep={k, self._current})
            return model

    def activate(self, spec, labelset: str | None = None):
        """Make ``spec`` the current model. On failure the previous current model is untouched."""
        with self._lock:
            model = self.get(spec, labelset)   # raises before anything changes
            self._current = self.key(spec)
            return model

    def unload(self, spec=None) -> bool:
        with self._lock:
            k = self._current if spec is None else self.key(spec)
            m = self._models.pop(k, None) if k else None
            if k == self._current:
                self._current = None
            self._release()
            return m is not None

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._current = None
            self._release()

    def _evict(self, keep: set) -> None:
        while self.resident_bytes() > self.budget:
            victim = next((k for k in self._models if k not in keep), None)
            if victim is None:
                break
            m = self._models.pop(victim)
            self.log.append(f"unloaded {m.name} to stay within the {self.budget / 2**30:.1f} GiB model budget")
        self._release()

    def _release(self) -> None:
        import gc

        gc.collect()
        dev = getattr(self.device, "type", None)
        if dev == "cuda":
            import torch

            torch.cuda.empty_cache()

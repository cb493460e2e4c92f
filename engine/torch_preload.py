"""Load torch's shared libraries without holding the GIL, before ``import torch``.

``import torch`` on the engine thread would otherwise stall the editor's UI thread for about 0.4 s:
CPython keeps the GIL while it dlopen()s an extension module, and libtorch_cpu's loading and static
initialisers take that long. Calling the C library's ``dlopen`` through ctypes releases the GIL for the
call (ctypes foreign calls always do), so the heavy part runs while the UI thread keeps going; the
later ``import torch`` then finds the libraries already loaded. Linux and macOS only; elsewhere, or
if anything is unexpected, this does nothing and the import simply takes its usual course.

The rest of the import is Python, which hands the GIL to the UI thread every few milliseconds, except
for the cyclic garbage collector: a full collection triggered by the import's allocations walks every
object on the heap inside one C call and stalled the UI thread by about 120 ms. :func:`import_torch`
therefore pauses the collector for the import and then freezes what the import created (modules,
classes, functions that live as long as the process), so later collections skip it too.
"""
from __future__ import annotations

import os
import sys

_LIBS = ("libgomp.so.1", "libc10.so", "libtorch_cpu.so", "libtorch.so", "libtorch_python.so")
_DYLIBS = ("libomp.dylib", "libc10.dylib", "libtorch_cpu.dylib", "libtorch.dylib", "libtorch_python.dylib")
_done = False


def preload_torch_libraries() -> list[str]:
    """dlopen torch's libraries (RTLD_GLOBAL) with the GIL released; the names loaded."""
    global _done
    if _done or "torch" in sys.modules or not sys.platform.startswith(("linux", "darwin")):
        return []
    _done = True
    import ctypes
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.origin is None:
            return []
        libdir = os.path.join(os.path.dirname(spec.origin), "lib")
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    except (OSError, AttributeError, ValueError):
        return []
    mode = 0x2 | (0x100 if sys.platform.startswith("linux") else 0x8)      # RTLD_NOW | RTLD_GLOBAL
    loaded = []
    for name in (_DYLIBS if sys.platform == "darwin" else _LIBS):
        path = os.path.join(libdir, name)
        if os.path.exists(path) and dlopen(path.encode(), mode):
            loaded.append(name)
    return loaded


def import_torch():
    """``import torch`` off the UI thread without stalling it: libraries preloaded without the GIL, the
    collector paused during the import, and the imported objects frozen out of later collections."""
    import gc

    preload_torch_libraries()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import torch
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    return torch

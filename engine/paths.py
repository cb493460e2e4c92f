"""Where bundled resources live (source checkout or a frozen bundle)."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("SEMSTUDIO_RESOURCES")
    if env:
        return Path(env)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def bundled_models_dir() -> Path:
    return resources_dir() / "models"


def demo_dir() -> Path:
    return resources_dir() / "demo"


def user_models_dir() -> Path:
    """Where imported models live: the platform's user data folder (SEMSTUDIO_MODELS_DIR, the editor's
    Preferences, or SEMSTUDIO_DATA_DIR override it)."""
    models = os.environ.get("SEMSTUDIO_MODELS_DIR")
    if models:
        return Path(models)
    env = os.environ.get("SEMSTUDIO_DATA_DIR")
    if env:
        return Path(env) / "models"
    from platformdirs import user_data_dir

    return Path(user_data_dir("SemanticStudio", appauthor=False)) / "models"

"""User settings as JSON in the platform's config folder (platformdirs); written atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path

from platformdirs import user_config_dir

APP = "SemanticStudio"


def config_dir() -> Path:
    return Path(os.environ.get("SEMSTUDIO_CONFIG_DIR") or user_config_dir(APP, appauthor=False))


class Settings:
    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / "settings.json"
        self.data: dict = {}
        try:
            self.data = json.loads(self.path.read_text())
            if not isinstance(self.data, dict):
                self.data = {}
        except (OSError, ValueError):
            self.data = {}

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def set(self, key: str, value) -> None:
        if self.data.get(key) == value:
            return
        self.data[key] = value
        self.save()

    def save(self) -> None:
        from engine.labels.io import atomic_write_bytes

        try:
            atomic_write_bytes(self.path, (json.dumps(self.data, indent=2) + "\n").encode())
        except OSError:
            pass   # settings are a convenience; never fail an edit because of them

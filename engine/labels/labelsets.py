"""Label sets: class names, colours, void/dontcare index, raw file encodings."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..paths import resources_dir


@dataclass(frozen=True)
class LabelClass:
    index: int
    name: str
    color: tuple[int, int, int]
    thing: bool = False


@dataclass(frozen=True)
class LabelSet:
    name: str
    title: str
    classes: tuple[LabelClass, ...]
    num_classes: int                 # real classes, without void/dontcare
    void_index: int | None           # dontcare/void index (one extra one-hot channel), or None
    erase_index: int                 # what the eraser paints
    raw_kind: str = "identity"       # identity | dontcare_255 | minus_one
    source: str = ""

    @property
    def num_indices(self) -> int:
        """Number of valid label values (classes plus void if any)."""
        return len(self.classes)

    @property
    def one_hot_channels(self) -> int:
        return self.num_indices

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 colour table; unused entries are black."""
        pal = np.zeros((256, 3), np.uint8)
        for c in self.classes:
            pal[c.index] = c.color
        return pal

    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def thing_indices(self) -> list[int]:
        return [c.index for c in self.classes if c.thing]

    def index_of(self, name: str) -> int:
        for c in self.classes:
            if c.name == name:
                return c.index
        raise KeyError(name)

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "num_classes": self.num_classes,
                "void_index": self.void_index, "erase_index": self.erase_index,
                "one_hot_channels": self.one_hot_channels, "raw": {"kind": self.raw_kind},
                "source": self.source,
                "classes": [{"index": c.index, "name": c.name, "color": list(c.color), "thing": c.thing}
                            for c in self.classes]}

    @classmethod
    def from_json(cls, d: dict) -> "LabelSet":
        classes = tuple(LabelClass(int(c["index"]), str(c["name"]), tuple(int(v) for v in c["color"]),
                                   bool(c.get("thing", False))) for c in d["classes"])
        if [c.index for c in classes] != list(range(len(classes))):
            raise ValueError(f"label set {d.get('name')}: class indices must be 0..N-1 in order")
        void = d.get("void_index")
        erase = d.get("erase_index", void if void is not None else 0)
        return cls(name=d["name"], title=d.get("title", d["name"]), classes=classes,
                   num_classes=int(d["num_classes"]), void_index=void, erase_index=int(erase),
                   raw_kind=d.get("raw", {}).get("kind", "identity"), source=d.get("source", ""))


def labelsets_dir() -> Path:
    return resources_dir() / "labelsets"


def available_labelsets() -> list[str]:
    return sorted(p.stem for p in labelsets_dir().glob("*.json"))


@lru_cache(maxsize=None)
def get_labelset(name: str) -> LabelSet:
    p = labelsets_dir() / f"{name}.json"
    if not p.exists():
        raise KeyError(f"unknown label set '{name}' (known: {', '.join(available_labelsets())})")
    return LabelSet.from_json(json.loads(p.read_text()))


def decode_raw(raw: np.ndarray, ls: LabelSet) -> np.ndarray:
    """Map raw dataset file values to label-set indices (ADE20K's 0=unknown, COCO's 255=dontcare)."""
    raw = raw.astype(np.int32)
    if ls.raw_kind == "minus_one":
        out = raw - 1
        out[out < 0] = ls.void_index
        return out
    if ls.raw_kind == "dontcare_255":
        out = raw.copy()
        out[out == 255] = ls.void_index
        return out
    return raw


def encode_raw(labels: np.ndarray, ls: LabelSet) -> np.ndarray:
    """Inverse of :func:`decode_raw`."""
    lab = labels.astype(np.int32)
    if ls.raw_kind == "minus_one":
        out = lab + 1
        out[lab == ls.void_index] = 0
        return out
    if ls.raw_kind == "dontcare_255":
        out = lab.copy()
        out[lab == ls.void_index] = 255
        return out
    return lab

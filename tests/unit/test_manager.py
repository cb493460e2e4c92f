"""Resident models: LRU within a memory budget, rollback on a failed load, out-of-memory fallback."""
import shutil

import pytest
import torch

from engine.cards import ModelError
from engine.manager import ModelManager
from engine.registry import demo_model_dir
from engine.worker import generate_with_fallback


@pytest.fixture()
def three_models(tmp_path):
    """Three copies of the demo model folder (each a distinct model of ~23 MB)."""
    out = []
    for n in "abc":
        d = tmp_path / n
        shutil.copytree(demo_model_dir(), d)
        out.append(d)
    return out


def test_lru_stays_within_budget_and_keeps_current(three_models):
    a, b, c = three_models
    one = ModelManager().get(a).nbytes
    mm = ModelManager(budget_bytes=int(2.5 * one))
    mm.activate(a)
    mm.get(b)
    assert mm.resident() and len(mm.resident()) == 2
    mm.get(c)                                    # over budget: b (least recent, not current) goes
    assert len(mm.resident()) == 2 and mm.current is not None
    assert mm.key(a) in mm._models and mm.key(b) not in mm._models and mm.key(c) in mm._models
    assert mm.resident_bytes() <= mm.budget and "unloaded" in mm.log[-1]
    m_again = mm.get(a)                          # a hit: no reload
    assert m_again is mm.current


def test_failed_load_rolls_back_to_previous(three_models, tmp_path):
    a = three_models[0]
    mm = ModelManager()
    prev = mm.activate(a)
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError, match="not a loadable PyTorch checkpoint"):
        mm.activate(bad)
    assert mm.current is prev and len(mm.resident()) == 1
    assert mm.unload() and mm.current is None and mm.resident() == []


class _FakeModel:
    def __init__(self):
        self.device = torch.device("cuda")
        self.moves = []

    def to(self, dev):
        self.moves.append(str(dev))
        self.device = dev
        return self


def test_out_of_memory_retries_on_cpu_and_says_so():
    m = _FakeModel()
    calls = []

    def run(model):
        calls.append(model.device.type)
        if model.device.type == "cuda":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "image"

    notes = []
    assert generate_with_fallback(m, notes, run) == "image"
    assert calls == ["cuda", "cpu"] and m.moves == ["cpu", "cuda"]
    assert "out of memory" in notes[0] and "CPU" in notes[0]
    with pytest.raises(ValueError):   # other errors are not retried
        generate_with_fallback(_FakeModel(), [], lambda _m: (_ for _ in ()).throw(ValueError("bad ids")))

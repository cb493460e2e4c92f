"""The fast SPADE path computes the reference function (vectors, full-size coco, the demo model)."""
import json

import numpy as np
import pytest
import torch

from engine.labels.maps import semantics_tensor
from engine.models.spade import SPADEGenerator, SpadeConfig, infer_config, load_generator
from engine.models.spade_fast import FastSPADEGenerator

VECTORS = [("spade_coco_like_ngf2.pt", "normal", 7), ("spade_ade_like_most_ngf2.pt", None, 5),
           ("spade_city_like_vae_ngf2.pt", "more", 4)]


@pytest.mark.parametrize("name,ups,k", VECTORS)
@pytest.mark.parametrize("gather", [False, True])
def test_fast_path_matches_vectors(vectors, name, ups, k, gather):
    d = torch.load(vectors / name, weights_only=True)
    g = load_generator(d["state_dict"], infer_config(d["state_dict"], ups, tuple(d["config"]["image_hw"])))
    f = FastSPADEGenerator(g, n_onehot=k, gather=gather)
    out = f(d["inputs"]["input_semantics"], d["inputs"].get("z"))
    assert (out - d["output"]).abs().max().item() <= 1e-5


def _calibrated_reference(g, seg):
    """BN statistics from one train-mode forward (as the official vectors do), then the eval output."""
    g.train()
    with torch.no_grad():
        g(seg)
    g.eval()
    with torch.no_grad():
        return g(seg)


def test_fast_path_matches_reference_on_full_size_coco(manifests):
    """Full-size coco generator (random weights, BN statistics calibrated like the vectors')."""
    m = json.loads((manifests / "spade_coco.json").read_text())
    torch.manual_seed(0)
    g = SPADEGenerator(SpadeConfig(semantic_nc=m["options"]["semantic_nc"], ngf=m["options"]["ngf"]))
    lab = torch.randint(0, 183, (1, 1, 8, 8))
    lab = torch.nn.functional.interpolate(lab.float(), size=(64, 64)).long()     # blocky, like real maps
    seg = semantics_tensor(lab, 183, lab)
    ref = _calibrated_reference(g, seg)
    for gather in (False, True):
        out = FastSPADEGenerator(g, n_onehot=183, gather=gather)(seg)
        assert (out - ref).abs().max().item() <= 1e-4


def test_generate_fast_and_reference_agree():
    from engine.labels import read_label_png
    from engine.paths import demo_dir
    from engine.registry import generate, load_model

    m = load_model(None)
    lab = read_label_png(demo_dir() / "scene_labels.png", m.labelset)
    a = generate(m, lab).astype(int)
    b = generate(m, lab, reference=True).astype(int)
    assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize("edge", [False, True])
def test_sparse_boundary_path_is_exact(monkeypatch, edge):
    """Force the table+boundary path at every level and compare with the reference."""
    from engine.models import spade_fast

    monkeypatch.setattr(spade_fast._LevelCtx, "SPARSE_MAX_FRACTION", 1.0)
    seen = []
    orig = spade_fast._LevelCtx.__init__

    def spy(self, actv, key):
        orig(self, actv, key)
        seen.append(self.sparse)
    monkeypatch.setattr(spade_fast._LevelCtx, "__init__", spy)
    torch.manual_seed(1)
    k = 30
    g = SPADEGenerator(SpadeConfig(semantic_nc=k + (1 if edge else 0), ngf=4, nhidden=16))
    lab = torch.nn.functional.interpolate(torch.randint(0, k, (2, 1, 4, 6)).float(), size=(64, 96)).long()
    seg = semantics_tensor(lab, k, lab if edge else None)
    ref = _calibrated_reference(g, seg)
    fast = FastSPADEGenerator(g, n_onehot=k)
    assert fast.sparse
    out = fast(seg)
    assert any(seen) and (out - ref).abs().max().item() <= 1e-4

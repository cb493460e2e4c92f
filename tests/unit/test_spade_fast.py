"""The fast SPADE path computes the reference function (vectors, full-size coco, the demo model)."""
import json

import numpy as np
import pytest
import torch

from engine.labels.maps import semantics_tensor
from engine.models.blocks import freeze_spectral_norm
from engine.models.spade import SPADEGenerator, SpadeConfig, infer_config, load_generator
from engine.models.spade_fast import FastSPADEGenerator

VECTORS = [("spade_coco_like_ngf2.pt", "normal", 7), ("spade_ade_like_most_ngf2.pt", None, 5),
           ("spade_city_like_vae_ngf2.pt", "more", 4)]


@pytest.mark.parametrize("name,ups,k", VECTORS)
@pytest.mark.parametrize("via", ["semantics", "keys"])
def test_fast_path_matches_vectors(vectors, name, ups, k, via):
    d = torch.load(vectors / name, weights_only=True)
    g = load_generator(d["state_dict"], infer_config(d["state_dict"], ups, tuple(d["config"]["image_hw"])))
    f = FastSPADEGenerator(g, n_onehot=k)
    assert f.lookup
    seg = d["inputs"]["input_semantics"]
    if via == "keys":
        keys = f.keys_from_semantics(seg)
        assert keys is not None
        out = f.forward_labels(keys, d["inputs"].get("z"))
    else:
        out = f(seg, d["inputs"].get("z"))
    assert (out - d["output"]).abs().max().item() <= 1e-5
    # the reference, whose weights are now views of the fast path's layouts, still gives the vector
    with torch.no_grad():
        assert (g(seg, d["inputs"].get("z")) - d["output"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name,ups,k", VECTORS[::2])
def test_move_keeps_one_copy_of_the_weights(vectors, name, ups, k):
    """``.to(...)`` (here a dtype move: the same ``_apply`` a device move takes) leaves the reference
    reading the fast path's tensors, one copy, and both still give the vector."""
    d = torch.load(vectors / name, weights_only=True)
    g = load_generator(d["state_dict"], infer_config(d["state_dict"], ups, tuple(d["config"]["image_hw"])))
    freeze_spectral_norm(g)       # as the registry does before building the fast path
    f = FastSPADEGenerator(g, n_onehot=k)
    f.double()
    g.double()                    # a no-op for everything the fast path shares
    shared = {t.untyped_storage().data_ptr() for t in f.state_dict().values() if t is not None}
    for name_, p in g.named_parameters():
        assert p.dtype == torch.float64, name_
        if p.dim() > 1:           # every weight (a few bias vectors are folded, e.g. 1 + gamma)
            assert p.untyped_storage().data_ptr() in shared, f"{name_} is a second copy"
    seg = d["inputs"]["input_semantics"].double()
    z = d["inputs"].get("z")
    z = None if z is None else z.double()
    assert (f(seg, z) - d["output"].double()).abs().max().item() <= 1e-5
    with torch.no_grad():
        assert (g(seg, z) - d["output"].double()).abs().max().item() <= 1e-5


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
    out = FastSPADEGenerator(g, n_onehot=183)(seg)
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
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_boundary_paths_are_exact(monkeypatch, edge, norm):
    """Both boundary computations (per-pattern taps and im2col), split into chunks, in a batch of two."""
    from engine.models import spade_fast

    monkeypatch.setattr(spade_fast._Level, "Y_BYTES", 1 << 16)          # force many chunks
    monkeypatch.setattr(spade_fast, "MOD_CHUNK_ELEMS", 1000)
    ways = []
    orig = spade_fast._Level.__init__

    def spy(self, *a):
        orig(self, *a)
        ways.extend((c[1] is not None, c[3]) for c in self.chunks)
    monkeypatch.setattr(spade_fast._Level, "__init__", spy)
    torch.manual_seed(1)
    k = 30
    g = SPADEGenerator(SpadeConfig(semantic_nc=k + (1 if edge else 0), ngf=4, nhidden=16, norm=norm))
    lab = torch.nn.functional.interpolate(torch.randint(0, k, (2, 1, 4, 6)).float(), size=(64, 96)).long()
    inst = lab.clone()
    inst[:, :, 10:30, 20:50] += 100                # an instance inside a region: edge bits without a class change
    seg = semantics_tensor(lab, k, inst if edge else None)
    ref = _calibrated_reference(g, seg)
    fast = FastSPADEGenerator(g, n_onehot=k)
    assert fast.lookup and fast.edge == edge
    out = fast(seg)
    assert (True, True) in ways and (True, False) in ways      # split chunks, both ways
    assert (out - ref).abs().max().item() <= 1e-4


def test_many_keys_and_noise_labels():
    """More keys than the packed pattern code holds (unique rows instead), every pixel a boundary."""
    torch.manual_seed(2)
    k = 150
    g = SPADEGenerator(SpadeConfig(semantic_nc=k + 1, ngf=4, nhidden=8))
    lab = torch.randint(0, k, (1, 1, 64, 64))
    seg = semantics_tensor(lab, k, torch.randint(0, 3, (1, 1, 64, 64)))
    ref = _calibrated_reference(g, seg)
    out = FastSPADEGenerator(g, n_onehot=k)(seg)
    assert (out - ref).abs().max().item() <= 1e-4


def test_soft_input_runs_the_reference():
    """A semantic tensor that is not exactly one-hot cannot be read as keys: the reference runs it."""
    torch.manual_seed(3)
    k = 12
    g = SPADEGenerator(SpadeConfig(semantic_nc=k, ngf=4, nhidden=8)).eval()
    seg = semantics_tensor(torch.randint(0, k, (1, 1, 32, 32)), k)
    seg[0, :, 5, 5] = 1.0 / k
    fast = FastSPADEGenerator(g, n_onehot=k)
    assert fast.keys_from_semantics(seg) is None
    with torch.no_grad():
        assert torch.equal(fast(seg), g(seg))

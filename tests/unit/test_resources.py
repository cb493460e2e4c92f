"""Every bundled file is recorded with its sha256 and licence; the demo model's card is complete."""
import hashlib
import json
import os

import pytest

from engine.cards import load_card
from engine.paths import resources_dir
from engine.registry import demo_model_dir


def test_manifest_lists_every_bundled_file_with_sha_and_licence():
    res = resources_dir()
    man = json.loads((res / "MANIFEST.json").read_text())["files"]
    on_disk = {p.relative_to(res).as_posix() for p in res.rglob("*") if p.is_file() and p.name != "MANIFEST.json"}
    assert on_disk == set(man), "run tools/make_manifest.py"
    for rel, info in man.items():
        assert hashlib.sha256((res / rel).read_bytes()).hexdigest() == info["sha256"], rel
        assert info["licence"] and info["source"]


def test_demo_model_card_is_complete():
    d = demo_model_dir()
    card = load_card(d, verify=True)
    assert card["family"] == "spade" and card["labelset"] == "camvid_11"
    assert card["resolution"] == [256, 192]
    t = card["training"]
    assert "non-commercial" in t["data_licence"] and t["steps"] > 0 and t["cpu_hours"] > 0
    assert (d / "generator.safetensors").stat().st_size <= 40 * 1024 * 1024
    for k in ("ngf", "nhidden", "semantic_nc", "norm", "num_upsampling_layers"):
        assert k in card["options"]


def test_tampered_weights_are_refused(tmp_path):
    import shutil

    import pytest

    from engine.cards import ModelError
    from engine.registry import load_model

    d = tmp_path / "m"
    shutil.copytree(demo_model_dir(), d)
    w = d / "generator.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model(d)
    (d / "generator.safetensors").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(d)


def test_bundled_zoo_within_budget_and_every_generator_card_carries_its_eval_table():
    """All bundled weights together stay within 150 MB; each bundled CamVid generator's card holds the
    protocol's figures (segmenter mIoU, the oracle's, their ratio, FD-VGG) and its training cost."""
    from engine.registry import GENERATOR_FAMILIES, catalog

    models = resources_dir() / "models"
    weights = sum(p.stat().st_size for p in models.rglob("*.safetensors"))
    assert weights <= 150 * 1024 * 1024, f"bundled weights {weights / 2**20:.1f} MB"
    gens = [e for e in catalog() if e["where"] == "bundled" and e.get("family") in GENERATOR_FAMILIES]
    assert gens
    for e in gens:
        card = load_card(e["path"], verify=True)
        row = card["eval"]["camvid_segnet:val"]
        assert row["segmenter"] == "camvid_segmenter" and row["images"] == 101
        assert row["miou_ratio"] == round(row["miou"] / row["oracle_miou"], 4)
        assert row["fd_vgg"] > 0 and card["training"]["cpu_hours"] > 0


def test_saved_weights_are_atomic_and_readable_like_any_user_file(tmp_path):
    import os

    import numpy as np
    import torch
    from safetensors.numpy import load_file as load_np
    from safetensors.torch import load_file

    from engine.cards import save_safetensors

    old = os.umask(0o022)
    try:
        p = save_safetensors({"w": torch.arange(6.0).view(2, 3)}, tmp_path / "g.safetensors", {"family": "x"})
        q = save_safetensors({"c": np.ones((2, 2), np.float32)}, tmp_path / "c.safetensors")
    finally:
        os.umask(old)
    assert torch.equal(load_file(p)["w"], torch.arange(6.0).view(2, 3))
    assert load_np(q)["c"].sum() == 4
    if os.name == "posix":                      # safetensors alone writes 0600: unreadable to other users
        assert p.stat().st_mode & 0o777 == 0o644 and q.stat().st_mode & 0o777 == 0o644
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.safetensors", "g.safetensors"]    # no .tmp left


@pytest.mark.skipif(os.name != "posix", reason="umask and file modes are POSIX")
def test_new_file_mode_reads_the_umask_without_opening_a_world_writable_window(monkeypatch):
    """The mode follows the umask; where /proc cannot tell it, the umask is read by setting a private
    stand-in (never 0, which would make another thread's new file world-writable) and put back."""
    import builtins

    from engine.labels.io import new_file_mode

    old = os.umask(0o027)
    try:
        assert new_file_mode() == 0o640
        seen = []
        real_umask, real_open = os.umask, builtins.open

        def spy_umask(m):
            seen.append(m)
            return real_umask(m)

        def no_proc(path, *a, **k):
            if str(path).startswith("/proc/"):
                raise OSError("no /proc here")
            return real_open(path, *a, **k)

        monkeypatch.setattr(os, "umask", spy_umask)
        monkeypatch.setattr(builtins, "open", no_proc)
        assert new_file_mode() == 0o640
        monkeypatch.undo()
        assert seen == [0o077, 0o027] and os.umask(0o027) == 0o027
    finally:
        os.umask(old)

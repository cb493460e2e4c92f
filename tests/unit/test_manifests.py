"""Every official checkpoint layout in ../shared/reference/manifests, end to end.

Random tensors of the manifest's shapes are saved exactly as the official code saves them
(``checkpoints/<name>/latest_net_G.pth``, plain ``torch.save(state_dict)``); ``models inspect`` must
report exactly the manifest's options with no flags, and ``generate`` must produce an image.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cards import inspect_state_dict
from engine.cli import main

GENERATOR_MANIFESTS = ["spade_coco.json", "spade_ade20k.json", "spade_cityscapes.json", "spade_coco_use_vae.json",
                       "pix2pixhd_label2city_1024p.json", "pix2pixhd_label2city_1024p_feat.json",
                       "pix2pixhd_label2city_512p.json", "pix2pixhd_label2city_512p_feat.json",
                       "smis_deepfashion.json", "smis_cityscapes.json", "smis_ade20k.json"]


def test_every_generator_manifest_is_listed(manifests):
    found = {p.name for p in manifests.glob("*.json")} - {"fastphotostyle_photo_wct.json"}
    assert found == set(GENERATOR_MANIFESTS)


def _random_sd(shapes: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(3, dtype=torch.int64)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(s, generator=g) + 0.5
        elif k.endswith("running_mean"):
            sd[k] = torch.randn(s, generator=g) * 0.1
        else:
            t = torch.randn(s, generator=g)
            sd[k] = t / max(1.0, float(np.prod(s[1:])) ** 0.5) if len(s) > 1 else t * 0.1
    return sd


@pytest.mark.parametrize("name", GENERATOR_MANIFESTS)
def test_inspect_reports_the_manifest_options(manifests, name):
    m = json.loads((manifests / name).read_text())
    sd = {k: torch.empty(v, device="meta") for k, v in m["networks"]["G"]["state_dict"].items()}
    info = inspect_state_dict(sd, name)
    want = {k: v for k, v in m["options"].items() if k != "name"}   # the name is the checkpoint's folder
    got = {k: info["official_options"].get(k) for k in want}
    assert got == want


@pytest.mark.parametrize("name", GENERATOR_MANIFESTS)
def test_official_checkpoint_inspects_and_generates(manifests, tmp_path, capsys, official_layout, name):
    m = json.loads((manifests / name).read_text())
    nets = m["networks"]
    folder = official_layout(m["options"]["name"], _random_sd(nets["G"]["state_dict"], 0),
                                  _random_sd(nets["E"]["state_dict"], 1) if "E" in nets else None)
    gfile = folder / "latest_net_G.pth"
    assert main(["models", "inspect", str(gfile), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["official_options"] == m["options"]          # every option, the experiment name too
    assert ("encoder" in info) == ("E" in m["networks"])
    assert (folder / "card.json").exists()
    # the encoder file leads to the same model
    if "E" in m["networks"]:
        assert main(["models", "inspect", str(folder / "latest_net_E.pth"), "--json", "--no-card"]) == 0
        assert json.loads(capsys.readouterr().out)["official_options"] == m["options"]
    w, h = info["resolution"]
    lab = np.zeros((h // 8, w // 8), np.uint8)
    lab[:, lab.shape[1] // 2:] = 1
    lab[lab.shape[0] // 2:, : lab.shape[1] // 3] = 2
    Image.fromarray(lab).save(tmp_path / "labels.png")
    out = tmp_path / "out.png"
    small = f"{max(64, w // 8)}x{max(64, h // 8)}"
    # the folder (now holding card.json) and the bare file both load with no flags
    assert main(["generate", "-m", str(folder), "-l", str(tmp_path / "labels.png"), "--size", small,
                 "--seed", "1", "-o", str(out)]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (max(64, h // 8), max(64, w // 8), 3) and img.std() > 0

"""Shared fixtures. Reference data and datasets come from ../shared beside the checkout; a missing
folder is a hard failure with a clear message, never a silent skip."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEMSTUDIO_SHARED", ROOT.parent / "shared"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# never read or write the user's real settings
os.environ["SEMSTUDIO_CONFIG_DIR"] = __import__("tempfile").mkdtemp(prefix="semstudio-config-")
os.environ["SEMSTUDIO_DATA_DIR"] = __import__("tempfile").mkdtemp(prefix="semstudio-data-")


def _need(p: Path) -> Path:
    if not p.exists():
        pytest.fail(f"test data missing: {p} (set SEMSTUDIO_SHARED to the shared/ folder)")
    return p


@pytest.fixture(scope="session")
def shared() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def vectors(shared) -> Path:
    return _need(shared / "reference" / "vectors")


@pytest.fixture(scope="session")
def manifests(shared) -> Path:
    return _need(shared / "reference" / "manifests")


@pytest.fixture(scope="session")
def camvid(shared) -> Path:
    return _need(shared / "datasets" / "camvid_segnet")


@pytest.fixture(scope="session")
def tiny_camvid(tmp_path_factory, camvid) -> Path:
    """Six real CamVid train pairs downscaled to 96x72, in the CamVid layout."""
    import cv2
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny_camvid")
    (root / "train").mkdir()
    (root / "trainannot").mkdir()
    names = sorted(p.name for p in (camvid / "train").iterdir())[::60][:6]
    for n in names:
        img = np.array(Image.open(camvid / "train" / n).convert("RGB"))
        lab = np.array(Image.open(camvid / "trainannot" / n))
        Image.fromarray(cv2.resize(img, (96, 72), interpolation=cv2.INTER_AREA)).save(root / "train" / n)
        Image.fromarray(cv2.resize(lab, (96, 72), interpolation=cv2.INTER_NEAREST)).save(root / "trainannot" / n)
    return root


@pytest.fixture()
def official_layout(tmp_path):
    """``save(name, G, E=None)``: state_dicts written where and as the official code writes them."""
    return lambda name, G, E=None: save_official_layout(tmp_path, name, G, E)


def save_official_layout(root: Path, name: str, G: dict, E: dict | None = None) -> Path:
    """Save state_dicts as the official code does: ``root/checkpoints/<name>/latest_net_{G,E}.pth``
    (plain ``torch.save``); returns the folder."""
    import torch

    folder = root / "checkpoints" / name
    folder.mkdir(parents=True)
    torch.save(G, folder / "latest_net_G.pth")
    if E is not None:
        torch.save(E, folder / "latest_net_E.pth")
    return folder


@pytest.fixture(scope="session")
def simgan_model(tmp_path_factory, tiny_camvid):
    """Three SIMGAN steps on six tiny CamVid pairs, resumed for a fourth, exported."""
    from engine.train.export import export_run
    from engine.train.trainer import GANTrainer, TrainConfig, make_trainer

    run = tmp_path_factory.mktemp("simgan_run")
    cfg = TrainConfig(family="simgan", data=str(tiny_camvid), size=(64, 48), batch=2, steps=3, ngf=4, ndf=8,
                      ca_dim=8, lambda_vgg=0.0, lambda_pair=10.0, ttur=False, save_every=3, sample_every=3,
                      log_every=1, threads=1)
    tr = make_trainer(cfg, run)
    tr.fit()
    assert (run / "samples" / "step_000003.png").exists() and (run / "text_cache.npz").exists()
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].split(",")[4:] == ["CA_KL", "Cycle", "D", "GAN", "Pair"] and len(log) == 4
    tr2 = GANTrainer.resume(run, {"steps": 4})
    assert tr2.step == 3
    tr2.fit()
    assert tr2.step == 4
    out = tmp_path_factory.mktemp("models") / "tiny_simgan"
    card = export_run(run, out, "tiny_simgan")
    assert card["family"] == "simgan" and card["text"]["heldout"] and "research" in card["licence"]["data"]
    return out


@pytest.fixture(scope="session")
def write_feat_dataset():
    """``write(d, folder)``: the pix2pixHD feature vector's photo, label and instance maps, plus a flipped
    copy, as a tiny dataset folder (images/, labels/, instances/); returns (image, labels, instances)."""
    return _write_feat_dataset


def _write_feat_dataset(d: dict, data: Path):
    import numpy as np
    from PIL import Image

    for sub in ("images", "labels", "instances"):
        (data / sub).mkdir(parents=True)
    img = ((d["inputs"]["image"][0].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    lab = d["inputs"]["label"][0, 0].numpy().astype(np.uint8)
    inst = d["inputs"]["instance"][0, 0].numpy().astype(np.uint16)
    for i, flip in enumerate((False, True)):
        f = (lambda a: a[:, ::-1].copy()) if flip else (lambda a: a)
        Image.fromarray(f(img)).save(data / "images" / f"{i}.png")
        Image.fromarray(f(lab)).save(data / "labels" / f"{i}.png")
        Image.fromarray(f(inst)).save(data / "instances" / f"{i}.png")
    return img, lab, inst

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.cards import load_card
from engine.cli import main
from engine.registry import demo_model_dir

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_generate_demo_writes_model_sized_image(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["generate", "--demo", "-o", str(out)]) == 0
    img = np.array(Image.open(out))
    w, h = load_card(demo_model_dir())["resolution"]
    assert img.shape == (h, w, 3)
    assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 1000


def test_generate_from_labels_with_seed_and_size(tmp_path):
    from engine.labels import get_labelset, write_label_png

    lab = np.zeros((60, 80), np.int64)
    lab[30:] = 3
    write_label_png(tmp_path / "l.png", lab, get_labelset("camvid_11"))
    assert main(["generate", "-l", str(tmp_path / "l.png"), "--seed", "3", "--size", "128x96",
                 "-o", str(tmp_path / "o.png")]) == 0
    assert Image.open(tmp_path / "o.png").size == (128, 96)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_corrupt_png_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    r = _run("generate", "-l", str(bad), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "corrupt.png" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("case", ["ids", "checkpoint", "missing", "flag"])
def test_bad_input_exits_2(tmp_path, case, capsys):
    if case == "ids":
        Image.fromarray(np.full((8, 8), 50, np.uint8)).save(tmp_path / "l.png")
        argv = ["generate", "-l", str(tmp_path / "l.png"), "-o", str(tmp_path / "o.png")]
        expect = "50"
    elif case == "checkpoint":
        (tmp_path / "w.pth").write_bytes(b"definitely not a checkpoint")
        argv = ["generate", "--demo", "-m", str(tmp_path / "w.pth"), "-o", str(tmp_path / "o.png")]
        expect = "w.pth"
    elif case == "missing":
        argv = ["generate", "-l", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png")]
        expect = "nope.png"
    else:
        argv = ["generate", "--bogus", "-o", "x.png"]
        expect = "--bogus"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]


def test_models_inspect_json_and_list(capsys):
    f = demo_model_dir() / "generator.safetensors"
    before = (demo_model_dir() / "card.json").read_bytes()
    assert main(["models", "inspect", str(f), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["card"].startswith("kept:")                       # an existing card is never replaced
    assert (demo_model_dir() / "card.json").read_bytes() == before
    card = load_card(demo_model_dir())
    assert info["family"] == "spade" and info["labelset"] == "camvid_11"
    for k in ("ngf", "nhidden", "semantic_nc", "norm", "num_upsampling_layers", "use_vae"):
        assert info["options"][k] == card["options"][k]
    assert main(["models", "list"]) == 0
    assert "camvid_spade_demo" in capsys.readouterr().out


def test_train_cli_smoke_and_resume(tiny_camvid, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"size": [64, 32], "batch": 2, "ngf": 4, "nhidden": 8, "ndf": 8, "n_layers_D": 3,
                               "vgg_scale": 0.5, "save_every": 1, "sample_every": 0, "threads": 2}))
    run = tmp_path / "run"
    assert main(["train", "spade", "--data", str(tiny_camvid), "--out", str(run), "--config", str(cfg),
                 "--steps", "1"]) == 0
    assert main(["train", "spade", "--data", str(tiny_camvid), "--out", str(run), "--config", str(cfg)]) == 2
    assert main(["train", "spade", "--out", str(run), "--resume", "--steps", "2",
                 "--export", str(tmp_path / "m")]) == 0
    assert load_card(tmp_path / "m")["training"]["steps"] == 2
    assert main(["train", "spade", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2")]) == 2


def test_models_import_and_states(tmp_path, capsys, vectors):
    import shutil

    import torch

    from engine.paths import user_models_dir

    from safetensors.torch import load_file

    # an official-style .pth (plain state_dict) of a SPADE generator with no label set implied
    d = torch.load(vectors / "spade_ade_like_most_ngf2.pt", weights_only=True)
    odd = tmp_path / "ade_tiny.pth"
    torch.save(d["state_dict"], odd)
    assert main(["models", "import", str(odd)]) == 2                  # 5 channels: no label set implied
    assert "label set" in capsys.readouterr().err
    assert main(["models", "import", str(odd), "--labelset", "camvid_11"]) == 2
    assert "expects 12 input channels = 11 classes + void; this file has 5" in capsys.readouterr().err
    # the demo generator saved as a bare .pth: 12 channels imply CamVid
    pth = tmp_path / "demo_copy.pth"
    torch.save(load_file(str(demo_model_dir() / "generator.safetensors")), pth)
    assert main(["models", "import", str(pth), "--name", "x"]) == 0
    capsys.readouterr()
    dest = user_models_dir() / "x"
    assert (dest / "card.json").exists() and (dest / "generator.pth").exists()
    assert main(["models", "import", str(pth), "--name", "x"]) == 2   # the name is taken
    capsys.readouterr()
    out = tmp_path / "x.png"
    assert main(["generate", "--demo", "-m", "x", "-o", str(out)]) == 0   # imported models resolve by name
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    cat = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert cat["camvid_spade_demo"]["state"] == "ok" and cat["camvid_spade_demo"]["where"] == "bundled"
    assert cat["x"]["state"] == "ok" and cat["x"]["where"] == "user"
    data = bytearray((dest / "generator.pth").read_bytes())
    data[100] ^= 1
    (dest / "generator.pth").write_bytes(bytes(data))
    assert main(["models", "list", "--json"]) == 0
    assert {e["name"]: e for e in json.loads(capsys.readouterr().out)}["x"]["state"] == "mismatch"
    (dest / "generator.pth").unlink()
    assert main(["models", "list", "--json"]) == 0
    assert {e["name"]: e for e in json.loads(capsys.readouterr().out)}["x"]["state"] == "missing"
    shutil.rmtree(dest)
    bad = tmp_path / "junk.pth"
    torch.save({"a.weight": torch.zeros(3)}, bad)
    assert main(["models", "import", str(bad)]) == 2
    assert "not a recognised network" in capsys.readouterr().err

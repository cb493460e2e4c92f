"""Project files: round trip, OpenRaster shape, atomic save under a kill, clear errors, migrations,
autosave recovery."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _project(camvid, with_all=True):
    from app.io.project import LayerProps, Project
    from engine.labels import get_labelset, read_label_png

    ls = get_labelset("camvid_11")
    lab = read_label_png(camvid / "valannot" / "0016E5_07959.png", ls).astype(np.uint8)
    p = Project(ls, lab)
    if with_all:
        p.photo = np.asarray(Image.open(camvid / "val" / "0016E5_07959.png").convert("RGB"))
        p.instances = (np.arange(lab.size, dtype=np.int32).reshape(lab.shape) % 70000) % 65536
        p.result = p.photo[::-1].copy()
        p.edges = (np.arange(lab.size).reshape(lab.shape) % 7 == 0).astype(np.uint8) * 255
        p.mask = lab == 8
        p.layers = {"labels": LayerProps(True, 0.5, False), "photo": LayerProps(False, 1.0, True)}
        p.order = ["labels", "photo", "result", "instances", "edges", "mask"]
        p.styles = {"dusk sky": p.photo[:64, :64].copy(), "x/y": p.photo[64:96, :32].copy()}
        p.frames = [lab, np.roll(lab, 3, axis=1)]
        p.settings = {"model": "camvid_spade_demo", "seed": 7, "prompt": "the car is red", "fps": 15}
    return p


def test_round_trip_keeps_every_layer_bit_exact(camvid, tmp_path):
    from app.io.project import MIMETYPE, load_project, save_project

    p = _project(camvid)
    f = save_project(p, tmp_path / "scene.semstudio")
    q = load_project(f)
    assert q.labelset.name == "camvid_11" and q.size == (480, 360)
    for name in ("labels", "instances", "photo", "result", "edges", "mask"):
        assert np.array_equal(getattr(q, name), getattr(p, name)), name
    assert [np.array_equal(a, b) for a, b in zip(q.frames, p.frames)] == [True, True]
    assert set(q.styles) == set(p.styles) and all(np.array_equal(q.styles[k], p.styles[k]) for k in p.styles)
    assert q.layers["labels"].opacity == 0.5 and q.layers["photo"].locked and not q.layers["photo"].visible
    assert q.order[:2] == ["labels", "photo"] and q.settings == p.settings
    with zipfile.ZipFile(f) as z:                     # OpenRaster shape: stored mimetype first, thumbnail
        first = z.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert z.read("mimetype").decode() == MIMETYPE
        th = Image.open(io.BytesIO(z.read("Thumbnails/thumbnail.png")))
        assert max(th.size) == 256
        assert Image.open(io.BytesIO(z.read("layers/labels.png"))).mode == "P"
        assert Image.open(io.BytesIO(z.read("layers/instances.png"))).mode.startswith("I")
    # a minimal project (labels only) also round-trips
    m = _project(camvid, with_all=False)
    q = load_project(save_project(m, tmp_path / "min.semstudio"))
    assert q.photo is None and q.instances is None and np.array_equal(q.labels, m.labels)


def test_bad_files_give_one_clear_sentence(camvid, tmp_path):
    from app.io.project import ProjectError, load_project, save_project

    good = save_project(_project(camvid), tmp_path / "good.semstudio").read_bytes()
    cases = {"notzip.semstudio": b"hello", "trunc.semstudio": good[:len(good) // 2]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "image/openraster")
        z.writestr("stack.xml", "<image/>")
    cases["foreign.semstudio"] = buf.getvalue()
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProjectError) as e:
            load_project(tmp_path / name)
        assert "\n" not in str(e.value) and len(str(e.value)) < 200, str(e.value)
    # a flipped byte inside a stored PNG fails its CRC
    data = bytearray(good)
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        info = z.getinfo("layers/photo.png")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF
    (tmp_path / "flip.semstudio").write_bytes(bytes(data))
    with pytest.raises(ProjectError, match="damaged"):
        load_project(tmp_path / "flip.semstudio")
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "missing.semstudio")


def _rewrite_meta(src: Path, dst: Path, fn) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "project.json":
                data = json.dumps(fn(json.loads(data))).encode()
            zout.writestr(info, data)


def test_versions_newer_refused_older_migrated(camvid, tmp_path):
    from app.io.project import ProjectError, load_project, save_project

    f = save_project(_project(camvid, with_all=False), tmp_path / "a.semstudio")
    _rewrite_meta(f, tmp_path / "new.semstudio", lambda d: {**d, "version": 99})
    with pytest.raises(ProjectError, match="newer Semantic Studio"):
        load_project(tmp_path / "new.semstudio")

    def to_v0(d):
        d = dict(d, version=0)
        d["labels"] = d.pop("labelset")
        return d
    _rewrite_meta(f, tmp_path / "old.semstudio", to_v0)
    q = load_project(tmp_path / "old.semstudio")
    assert q.labelset.name == "camvid_11"


KILLER = r"""
import sys, time, numpy as np
sys.path.insert(0, {root!r})
from app.io.project import Project, save_project
from engine.labels import get_labelset
ls = get_labelset("camvid_11")
p = Project(ls, np.full((360, 480), 8, np.uint8))
def stall(tmp):
    print("STALL", tmp, flush=True)
    time.sleep(60)
save_project(p, {target!r}, _before_rename=stall)
"""


def test_kill_during_save_leaves_the_previous_file_intact(camvid, tmp_path):
    from app.io.project import load_project, save_project

    target = tmp_path / "scene.semstudio"
    p = _project(camvid)
    save_project(p, target)
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", KILLER.format(root=str(ROOT), target=str(target))],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("STALL"), line
    tmp = Path(line.split()[1])
    assert tmp.exists() and tmp.stat().st_size > 0        # the new file was fully written, not yet renamed
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert target.read_bytes() == before
    assert np.array_equal(load_project(target).labels, p.labels)


def test_autosave_is_offered_after_a_crash_not_while_running(camvid, tmp_path, monkeypatch):
    from app.io import project as pj

    monkeypatch.setenv("SEMSTUDIO_DATA_DIR", str(tmp_path / "data"))
    p = _project(camvid, with_all=False)
    pj.write_autosave(p, "live", tmp_path / "scene.semstudio")
    assert pj.recoverable() == []                        # this process is alive: not a crash
    # a session whose editor died
    out = pj.write_autosave(p, "crashed", None)
    side = out.with_suffix(".json")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    side.write_text(json.dumps({"original": "/x/scene.semstudio", "pid": int(dead.stdout)}))
    rec = pj.recoverable()
    assert [r["session"] for r in rec] == ["crashed"] and rec[0]["original"] == "/x/scene.semstudio"
    assert np.array_equal(pj.load_project(rec[0]["path"]).labels, p.labels)
    pj.clear_autosave("crashed")
    assert pj.recoverable() == [] and not out.exists()

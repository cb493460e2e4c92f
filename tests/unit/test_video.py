"""Video engine: flow and occlusions, stabilisation, the timeline (import, keyframes), MP4 export, CLI."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from engine.labels.io import read_label_png, write_label_png
from engine.labels.labelsets import get_labelset
from engine.video.export import ExportError, Mp4Writer, probe_mp4
from engine.video.flow import dense_flow, flow_pair, occlusion_mask, warp, warping_error
from engine.video.sequence import SequenceError, export_label_frames, load_sequence
from engine.video.temporal import Stabilizer

LS = get_labelset("camvid_11")


def texture(h=96, w=128, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    n = rng.normal(0, 1, (h, w, 3)).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), 2.0)
    n = (n - n.min()) / (n.max() - n.min())
    return (n * 255).astype(np.uint8)


def moving(n=5, d=(3, 2), h=96, w=128):
    """Frames of a texture sliding by d=(dx, dy) px per frame, with a 20x20 square sliding twice as fast,
    and label maps (road background, car square) that move with it."""
    big = texture(h + 40, w + 60)
    frames, labels = [], []
    for t in range(n):
        ox, oy = 40 - d[0] * t, 30 - d[1] * t
        f = big[oy:oy + h, ox:ox + w].copy()
        lab = np.full((h, w), 3, np.int32)
        q = min(20, h // 4)
        sx, sy = w // 4 + 2 * d[0] * t, h // 4 + 2 * d[1] * t
        f[sy:sy + q, sx:sx + q] = texture(q, q, seed=7)
        lab[sy:sy + q, sx:sx + q] = 8
        frames.append(f)
        labels.append(lab)
    return frames, labels


def test_flow_recovers_a_known_shift_and_flags_what_leaves_the_frame():
    frames, _ = moving(2, d=(3, 2))
    f = dense_flow(frames[1], frames[0])                # t -> t-1: background moved by (+3, +2)
    core = (slice(10, 80), slice(10, 20))              # background away from the square and the borders
    assert np.allclose(np.median(f[core].reshape(-1, 2), 0), (-3, -2), atol=0.3)
    back = warp(frames[0], f)
    valid = ~occlusion_mask(f, dense_flow(frames[0], frames[1]))
    err = np.abs(back.astype(float) - frames[1])[valid].mean()
    assert err < 0.4 * np.abs(frames[0].astype(float) - frames[1]).mean()
    assert not valid[:, :2].any() or valid[:, :2].mean() < 0.5   # content entering on the left has no match
    with pytest.raises(ValueError, match="different sizes"):
        dense_flow(frames[0], frames[0][:50])
    with pytest.raises(ValueError, match="unknown flow method"):
        dense_flow(frames[0], frames[1], "raft")
    lab = np.zeros((96, 128), np.int32)
    lab[:, 64:] = 5
    assert set(np.unique(warp(lab, f, nearest=True))) <= {0, 5}      # nearest: no invented ids


def test_stabiliser_removes_flicker_along_the_motion_but_not_the_motion():
    frames, _ = moving(6, d=(2, 1))
    rng = np.random.default_rng(1)
    # a "generator" that renders the scene with a different global tint every frame: flicker
    outs = [np.clip(f.astype(int) + rng.integers(-30, 30, 3), 0, 255).astype(np.uint8) for f in frames]
    pairs = [flow_pair(frames[t], frames[t - 1]) for t in range(1, 6)]

    def werr(seq):
        return np.mean([warping_error(seq[t], seq[t - 1], *pairs[t - 1]) for t in range(1, 6)])

    stab = Stabilizer(0.8)
    smoothed = [stab.step(o, f) for o, f in zip(outs, frames)]
    assert stab.last_valid_fraction > 0.7
    assert werr(smoothed) < 0.5 * werr(outs)
    # the image still follows the scene: no ghost of frame 0 where the square has moved on
    assert np.abs(smoothed[-1].astype(float) - outs[-1]).mean() < 25
    off = Stabilizer(0.0)
    assert all(np.array_equal(off.step(o, f), o) for o, f in zip(outs, frames))
    with pytest.raises(ValueError, match="0..1"):
        Stabilizer(1.5)
    with pytest.raises(ValueError, match="size changed"):
        s = Stabilizer(0.5)
        s.step(outs[0], frames[0])
        s.step(outs[1], frames[1][:40])


def _write_seq(root, frames, labels, skip_labels=()):
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "lab").mkdir(parents=True, exist_ok=True)
    for t, (f, lab) in enumerate(zip(frames, labels)):
        Image.fromarray(f).save(root / "rgb" / f"f{t}.png")
        if t not in skip_labels:
            write_label_png(root / "lab" / f"f{t}.png", lab, LS)


def test_keyframes_travel_with_the_flow_and_gaps_are_reported(tmp_path):
    frames, labels = moving(7, d=(2, 1))
    _write_seq(tmp_path, frames, labels, skip_labels=(1, 2, 3, 4, 5))
    tl = load_sequence(tmp_path / "lab", LS, tmp_path / "rgb", fps=12)
    assert len(tl) == 7 and sorted(tl.keyframes) == [0, 6] and tl.size == (128, 96)
    with pytest.raises(SequenceError, match="no labels yet"):
        tl.labels(3)
    reports = tl.resolve()
    assert [r.index for r in reports] == [1, 2, 3, 4, 5]
    for t in range(1, 6):
        got = tl.labels(t)
        known = got != LS.void_index
        assert known.mean() > 0.9
        assert (got[known] == labels[t][known]).mean() > 0.97, t     # the car square moved with the flow
    # hold instead: frames copy the keyframe before them
    tl2 = load_sequence(tmp_path / "lab", LS, tmp_path / "rgb")
    tl2.keyframes[0] = True
    tl2.resolve()
    assert np.array_equal(tl2.labels(3), labels[0]) and tl2.frames[3].source == "hold"
    out = export_label_frames(tl, tmp_path / "out")
    assert [p.name for p in out] == [f"f{t}.png" for t in range(7)]
    assert np.array_equal(read_label_png(out[3], LS), tl.labels(3))             # lossless
    assert Image.open(out[3]).mode == "P"


def test_sequence_import_errors_name_the_files(tmp_path):
    frames, labels = moving(3)
    _write_seq(tmp_path, frames, labels)
    (tmp_path / "rgb" / "f1.png").unlink()
    with pytest.raises(SequenceError, match=r"1 label frame\(s\) have no matching frame.*f1"):
        load_sequence(tmp_path / "lab", LS, tmp_path / "rgb")
    Image.fromarray(frames[1][:50]).save(tmp_path / "rgb" / "f1.png")
    with pytest.raises(SequenceError, match="f1.png is 128x50, but the sequence is 128x96"):
        load_sequence(tmp_path / "lab", LS, tmp_path / "rgb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SequenceError, match="no label frames"):
        load_sequence(tmp_path / "empty", LS)
    with pytest.raises(SequenceError, match="not a folder"):
        load_sequence(tmp_path / "nope", LS)
    tl = load_sequence(tmp_path / "lab", LS)
    with pytest.raises(SequenceError, match="outside"):
        tl.set_range(2, 9)


def test_mp4_export_decodes_back_and_handles_odd_sizes(tmp_path):
    p = tmp_path / "v.mp4"
    with Mp4Writer(p, (65, 47), fps=12) as w:
        for t in range(9):
            w.write(np.full((47, 65, 3), 25 * t, np.uint8))
    assert w.notes and "66x48" in w.notes[0]
    info = probe_mp4(p)
    assert info["frames"] == 9 and info["size"] == (66, 48) and info["fps"] == pytest.approx(12, abs=0.01)
    if os.name == "posix":      # a normal file for the user, not mkstemp's private 0600
        old = os.umask(0o022)
        try:
            with Mp4Writer(tmp_path / "m.mp4", (8, 8), fps=12) as w:
                w.write(np.zeros((8, 8, 3), np.uint8))
        finally:
            os.umask(old)
        assert (tmp_path / "m.mp4").stat().st_mode & 0o777 == 0o644
    with pytest.raises(ExportError, match="is 10x10, the video 65x47"):
        with Mp4Writer(tmp_path / "bad.mp4", (65, 47), fps=12) as w:
            w.write(np.zeros((10, 10, 3), np.uint8))
    assert not (tmp_path / "bad.mp4").exists()
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")]     # no partial file left


def test_cli_video_renders_an_mp4_and_png_frames_and_refuses_bad_input(tmp_path, capsys):
    from engine.cli import main

    frames, labels = moving(4, d=(2, 1), h=48, w=64)
    _write_seq(tmp_path, frames, labels, skip_labels=(2,))
    out = tmp_path / "o.mp4"
    rc = main(["video", "-L", str(tmp_path / "lab"), "--frames", str(tmp_path / "rgb"), "--size", "64x48",
               "--stabilize", "0.5", "--export-labels", str(tmp_path / "labs"), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert probe_mp4(out)["frames"] == 4 and probe_mp4(out)["size"] == (64, 48)
    assert len(list((tmp_path / "labs").glob("*.png"))) == 4
    rc = main(["video", "-L", str(tmp_path / "lab"), "--size", "64x48", "--range", "1:3", "-o",
               str(tmp_path / "pngs")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "pngs").glob("*.png")) == ["f1.png", "f3.png"]
    capsys.readouterr()
    for argv, msg in ((["--stabilize", "2"], "--stabilize must be within 0..1"),
                      (["--range", "x"], "--range must look like"),
                      ([], "export to an .mp4 file or to a folder")):
        o = str(tmp_path / "v.avi") if not argv else str(tmp_path / "v.mp4")
        rc = main(["video", "-L", str(tmp_path / "lab"), "--size", "64x48", *argv, "-o", o])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and msg in err[-1], err


def test_eval_video_reports_warping_error_fd_and_miou_per_mode(camvid, capsys):
    import json

    from engine.cli import main

    rc = main(["eval", "--video", "-m", "camvid_spade_demo", "-m", "camvid_spade_demo", "--data", str(camvid),
               "--limit", "3", "--size", "96x72", "--no-floor", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    res = out["models"][0]
    assert res["frames"] == 3 and res["size"] == [96, 72] and 0 < res["oracle_miou"] <= 1
    rows = {r["mode"]: r for r in res["rows"]}
    assert set(rows) == {"per-frame", "stabilised (RGB flow)", "stabilised (label flow)"}
    per, rgb = rows["per-frame"], rows["stabilised (RGB flow)"]
    assert per["warping_error"] > 0 and rgb["warping_error"] < per["warping_error"]      # less flicker
    assert rgb["warping_error_vs_per_frame"] < 0 and per["warping_error_vs_per_frame"] == 0
    for r in rows.values():
        assert 0 <= r["miou"] <= 1 and r["fd_vgg"] >= 0 and r["frames_per_second"] > 0
    comp = out["against_first_per_frame"]
    assert len(comp) == 6 and comp[0]["warping_error_change"] == 0 and comp[3]["warping_error_change"] == 0

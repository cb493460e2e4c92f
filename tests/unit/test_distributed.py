"""DDP training: the step sampler, and a real 2-process torchrun run on CPU with the gloo backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.train.distributed import StepSampler

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = {"family": "spade", "labelset": "camvid_11", "size": [64, 64], "batch": 2, "steps": 3, "ngf": 4,
        "nhidden": 8, "ndf": 4, "num_D": 1, "n_layers_D": 2, "lambda_vgg": 0, "save_every": 2, "sample_every": 0,
        "log_every": 1, "threads": 1, "use_vae": True, "z_dim": 8}


def test_step_sampler_splits_the_global_batch_between_ranks():
    single = StepSampler(100, 6, seed=3)
    idx, rng = single.indices(7)
    again, _ = StepSampler(100, 6, seed=3).indices(7)
    assert idx == again and len(idx) == 6                                   # a function of (seed, step)
    assert idx == [int(i) for i in np.random.default_rng([3, 7]).integers(0, 100, size=6)]
    parts = [StepSampler(100, 6, seed=3, rank=r, world=3).indices(7)[0] for r in range(3)]
    assert [i for k in range(2) for i in (parts[0][k], parts[1][k], parts[2][k])] == idx
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        StepSampler(100, 5, rank=0, world=2)


def _train(args, env_extra=None, timeout=240):
    env = {**os.environ, "SEMSTUDIO_DDP_BACKEND": "gloo", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_two_gloo_processes_end_with_identical_weights_and_resume_in_one(tiny_camvid, tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    r = _train(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "engine.cli",
                "train", "spade", "--data", str(tiny_camvid), "--config", str(cfg), "--out", str(run),
                "--distributed"])
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = json.loads((run / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["backend"] == "gloo" and ranks["step"] == 3
    assert len(ranks["weights_sha256"]) == 2 and len(set(ranks["weights_sha256"])) == 1
    # rank 0 alone logged: one header and one row per step
    assert len((run / "log.csv").read_text().strip().splitlines()) == 4
    st = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert st["step"] == 3 and not any(k.startswith("module.") for k in st["G"])
    # the checkpoint's weights are what every rank held
    import hashlib
    h = hashlib.sha256()
    for part in ("G", "D", "E"):
        for k, v in st[part].items():
            h.update(k.encode())
            h.update(v.contiguous().numpy().tobytes())
    assert h.hexdigest() == ranks["weights_sha256"][0]
    # resume with another world size (one process, no DDP): same global batch, continues at step 3
    r = _train(["-m", "engine.cli", "train", "spade", "--resume", "--out", str(run), "--steps", "4"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["step"] == 4


def test_distributed_without_a_launcher_is_a_clear_error(tiny_camvid, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    r = subprocess.run([sys.executable, "-m", "engine.cli", "train", "spade", "--data", str(tiny_camvid),
                        "--out", str(tmp_path / "r"), "--distributed"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert "torchrun" in r.stderr and len(r.stderr.strip().splitlines()) == 1

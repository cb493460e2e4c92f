import json

import numpy as np

from engine.cli import main
from engine.eval.metrics import _Acc, evaluate
from engine.registry import load_model


def test_metrics_are_exact_on_identical_images():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, size=(32, 48, 3)).astype(np.uint8)
    labels = rng.integers(0, 3, size=(32, 48))
    acc = _Acc(3)
    acc.add(real, real, labels)
    s = acc.summary(["a", "b", "c"], real_grad=acc.grad[0], skip=set())
    assert s["class_delta_e"] == 0 and s["psnr"] == 99.0 and s["texture_ratio"] == 1.0
    acc2 = _Acc(3)
    shifted = np.clip(real.astype(int) + 40, 0, 255).astype(np.uint8)
    acc2.add(shifted, real, labels)
    assert acc2.summary(["a", "b", "c"], acc.grad[0], set())["class_delta_e"] > 5


def test_evaluate_demo_model_and_cli(tiny_camvid, capsys):
    res = evaluate(load_model(None), tiny_camvid, split="train", size=(64, 32))
    assert res["images"] == 6 and res["size"] == [64, 32]
    for k in ("model", "baseline_class_mean"):
        assert res[k]["class_delta_e"] > 0 and np.isfinite(res[k]["psnr"])
    assert "void" not in res["model"]["class_delta_e_per_class"]
    assert main(["eval", "--data", str(tiny_camvid), "--split", "train", "--limit", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 2

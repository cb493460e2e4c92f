import numpy as np

from engine.eval.metrics import _Acc


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

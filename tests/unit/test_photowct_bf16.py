"""PhotoWCT's bfloat16 path (the VGG encoders and decoders in bf16 where the CPU has AMX): the bundled
decoders reconstruct real CamVid val photos as well in bf16 as in float32, and a real stylization stays
close to the float32 one. bf16 is emulated (slowly, same numbers) on CPUs without it, so these run
everywhere; only ``precision='auto'`` depends on the hardware."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.devices import cpu_has_native_bf16
from engine.models.photowct import load_photowct
from engine.stylize.pipeline import PhotoWCT, StylizeError, stylize
from engine.train.photowct import evaluate

SHARED = Path(__file__).resolve().parents[3] / "shared"
VAL = SHARED / "datasets" / "camvid_segnet" / "val"
PAIRS = SHARED / "datasets" / "photo_style_examples_wct2"


@pytest.fixture(scope="module")
def nets():
    return load_photowct(None)[0]


def _photos(n):
    files = sorted(VAL.glob("*.png"))[::25][:n]
    assert len(files) == n, f"CamVid val photos missing under {VAL}"
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def test_bf16_reconstruction_matches_float32(nets):
    photos = _photos(3)
    with torch.inference_mode():
        f32 = evaluate(nets, photos, levels=(2, 3, 4))
        bf = evaluate(nets, photos, levels=(2, 3, 4), dtype=torch.bfloat16)
    for k in f32:
        assert f32[k] > 20.0                                  # the real decoders, not noise
        # measured on 20 val photos: -0.04 (d2), -0.03 (d3), -0.04 dB (d4)
        assert abs(bf[k] - f32[k]) < 0.15, (k, f32[k], bf[k])


def test_bf16_stylization_close_to_float32(nets):
    content = np.asarray(Image.open(sorted((PAIRS / "content").iterdir())[0]).convert("RGB").resize((256, 192)))
    style = np.asarray(Image.open(sorted((PAIRS / "style").iterdir())[0]).convert("RGB").resize((256, 192)))
    a = stylize(PhotoWCT(nets, precision="fp32"), content, style, smooth="exact")
    b = stylize(PhotoWCT(nets, precision="bf16"), content, style, smooth="exact")
    assert a.info["precision"] == "fp32"
    assert b.info["precision"] == ("bf16" if cpu_has_native_bf16() else "fp32")
    mse = np.mean((a.image.astype(float) - b.image.astype(float)) ** 2)
    psnr = 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))
    assert psnr > 33.0, psnr                  # 39.5 dB on the bench's 512x384 pair
    assert not np.array_equal(a.image, content)


def test_precision_choice(nets):
    assert PhotoWCT(nets, precision="fp32").dtype == torch.float32
    auto = PhotoWCT(nets).dtype
    assert auto == (torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    with pytest.raises(StylizeError, match="precision"):
        PhotoWCT(nets, precision="half")

"""Winograd F(4x4, 3x3) for wide maps computes the 3x3 convolution (against oneDNN's direct one)."""
import pytest
import torch
import torch.nn.functional as F

from engine.models import winograd as wg


@pytest.mark.parametrize("c,k,h,w", [(16, 24, 13, 22), (8, 8, 5, 7), (32, 16, 9, 8), (64, 64, 4, 4),
                                     (12, 20, 1, 3), (8, 16, 40, 12)])
@pytest.mark.parametrize("tile_rows", [1, 2, 3])
def test_matches_direct_convolution(monkeypatch, c, k, h, w, tile_rows):
    monkeypatch.setattr(wg, "WINO_TILE_ROWS", tile_rows)     # steps of 1-3 tile rows, a short last one
    torch.manual_seed(c * 1000 + h)
    xp = torch.randn(1, c, h + 2, w + 2).contiguous(memory_format=torch.channels_last)
    wt, b = torch.randn(k, c, 3, 3) * 0.1, torch.randn(k)
    with torch.inference_mode():
        ref = F.conv2d(xp, wt, b)
        y = wg.winograd_conv3x3_wide(xp, wg.transform_weights(wt), b)
    assert y.shape == ref.shape and y.is_contiguous(memory_format=torch.channels_last)
    assert (y - ref).abs().max().item() <= 2e-5 * max(1.0, ref.abs().max().item())


def test_fills_a_row_slice_and_takes_any_layout():
    torch.manual_seed(1)
    x = torch.randn(1, 8, 10, 14)                           # contiguous NCHW input: copied once
    wt = torch.randn(16, 8, 3, 3) * 0.1
    big = torch.zeros(1, 16, 20, 12).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        wg.winograd_conv3x3_wide(x, wg.transform_weights(wt), None, out=big[:, :, 4:12])
        ref = F.conv2d(x, wt)
    assert (big[:, :, 4:12] - ref).abs().max().item() <= 2e-5 * ref.abs().max().item()
    assert big[:, :, :4].abs().max() == 0 and big[:, :, 12:].abs().max() == 0

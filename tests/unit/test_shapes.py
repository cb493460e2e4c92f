"""Shape tools without Qt: polygon/lasso, line, GrabCut smart select, preserve-labels LUT."""
import numpy as np
import pytest


def test_polygon_fills_hard_edged_inside_its_bounding_box():
    from app.tools.shapes import polygon_mask

    r, m = polygon_mask([(10, 10), (50, 10), (50, 40), (10, 40)], 100, 80)
    assert r == (10, 10, 51, 41) and m.all()                  # an axis-aligned rectangle, corners included
    r, m = polygon_mask([(20, 5), (60, 70), (-30, 70)], 100, 80)  # clipped at the canvas
    assert r[0] == 0 and r[3] == 71 and m.dtype == bool and not m.all()
    assert set(np.unique(m)) == {False, True}                  # boolean: no anti-aliased levels
    assert polygon_mask([(1, 1), (5, 5)], 10, 10) is None
    assert polygon_mask([(200, 200), (300, 200), (300, 300)], 100, 80) is None


def test_line_has_the_brush_width_and_round_caps():
    from app.tools.shapes import line_mask

    r, m = line_mask((10, 20), (90, 20), 9, 100, 50)
    assert r == (6, 16, 95, 25) and m.shape == (9, 89)
    assert m[:, m.shape[1] // 2].sum() == 9
    assert not m[0, 0] and not m[-1, 0]                        # rounded ends, not square
    r, m = line_mask((10, 20), (90, 20), 9, 100, 50, "square")
    assert m.all()


def test_smart_select_finds_an_object_from_a_rectangle():
    from app.tools.shapes import smart_select

    rng = np.random.default_rng(0)
    img = (rng.normal(0, 6, (120, 160, 3)) + [60, 120, 60]).clip(0, 255).astype(np.uint8)   # green field
    yy, xx = np.mgrid[:120, :160]
    obj = (xx - 80) ** 2 / 30 ** 2 + (yy - 60) ** 2 / 20 ** 2 < 1                          # red ellipse
    img[obj] = (rng.normal(0, 6, (obj.sum(), 3)) + [200, 40, 40]).clip(0, 255)
    r, m = smart_select(img, (40, 30, 121, 91))
    full = np.zeros(obj.shape, bool)
    full[r[1]:r[3], r[0]:r[2]] = m
    iou = (full & obj).sum() / (full | obj).sum()
    assert iou > 0.9
    assert smart_select(img, (5, 5, 6, 6)) is None


def test_preserve_lut():
    from app.tools.shapes import protect_lut

    assert protect_lut(12, None, 11) is None
    lut = protect_lut(12, "void", 11)
    assert not lut[11] and lut[:11].all()
    lut = protect_lut(12, "class", 11, chosen=3)
    assert not lut[11] and not lut[3] and lut[0]
    with pytest.raises(ValueError):
        protect_lut(12, "class", 11)

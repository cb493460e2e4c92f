import numpy as np

from app.model.painting import (LabelColorizer, TileSnapshot, brush_mask, dab, flood_fill, stroke_segment)


def test_brush_is_hard_edged_round_and_true_size():
    m = brush_mask(9)
    assert m.shape == (9, 9) and m[4, 4] and m[4, 0] and m[0, 4] and not m[0, 0]
    lab = np.zeros((50, 50), np.uint8)
    r = dab(lab, 25, 25, 9, 7)
    assert set(np.unique(lab)) == {0, 7}               # no blending values
    ys, xs = np.nonzero(lab)
    assert xs.max() - xs.min() + 1 == 9 and ys.max() - ys.min() + 1 == 9
    assert r == (21, 21, 30, 30)


def test_dab_clips_at_edges_and_protects():
    lab = np.zeros((20, 20), np.uint8)
    lab[:, 10:] = 3
    r = dab(lab, 0, 0, 11, 5)
    assert r[0] == 0 and r[1] == 0 and lab[0, 0] == 5
    protect = np.zeros(256, bool)
    protect[3] = True
    dab(lab, 12, 12, 9, 6, protect=protect)
    assert not np.any(lab[:, 10:] == 6) and np.any(lab == 6)


def test_stroke_patch_undo_restores_exactly():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 12, size=(300, 400)).astype(np.uint8)
    orig = lab.copy()
    snap = TileSnapshot(lab)
    pts = [(10, 10), (200, 150), (390, 290)]
    for a, b in zip(pts, pts[1:]):
        stroke_segment(lab, a, b, 15, 11, before=snap.capture)
    rect = snap.rect
    before = snap.before_patch(rect)
    restored = lab.copy()
    restored[rect[1]:rect[3], rect[0]:rect[2]] = before
    assert np.array_equal(restored, orig)
    assert not np.array_equal(lab, orig)


def test_fill_contiguous_and_global_report_changed_mask():
    lab = np.zeros((10, 10), np.uint8)
    lab[:, 5] = 1                                       # a wall splits two regions of 0
    r, mask, old = flood_fill(lab, 0, 0, 2, contiguous=True)
    assert old == 0 and r == (0, 0, 5, 10) and mask.all() and (lab[:, :5] == 2).all() and (lab[:, 6:] == 0).all()
    lab2 = np.zeros((10, 10), np.uint8)
    lab2[:, 5] = 1
    r, mask, old = flood_fill(lab2, 0, 0, 2, contiguous=False)
    assert (lab2 == 2).sum() == 90 and mask.sum() == 90
    assert flood_fill(lab2, 0, 0, 2) is None             # same class: nothing to do


def test_colorizer_updates_only_dirty_rect():
    pal = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)
    lab = np.zeros((10, 10), np.uint8)
    col = LabelColorizer(lab, pal)
    lab[:] = 1
    col.update((2, 3, 4, 5))
    assert (col.rgba[3:5, 2:4, 0] == 255).all() and col.rgba[0, 0, 0] == 0 and (col.rgba[..., 3] == 255).all()

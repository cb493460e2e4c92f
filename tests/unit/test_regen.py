"""Region regeneration on a real photo: auto-label, class swap, regenerate; outside stays bit-identical."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def street(camvid):
    from engine.models.segmenter import load_segmenter, segment_photo

    photo = np.asarray(Image.open(camvid / "val" / "0016E5_08079.png").convert("RGB"))
    labels = segment_photo(load_segmenter(), photo)
    return photo, labels


@pytest.mark.parametrize("blend", ["feather", "seamless"])
def test_class_swap_regenerates_only_the_changed_region(street, blend):
    from engine.labels import get_labelset
    from engine.regen import changed_mask, regenerate_region
    from engine.registry import load_model

    photo, labels = street
    ls = get_labelset("camvid_11")
    tree, building = ls.index_of("tree"), ls.index_of("building")
    assert (labels == tree).mean() > 0.03              # the auto-labels found the trees
    swapped = np.where(labels == tree, building, labels)
    mask = changed_mask(labels, swapped)
    model = load_model("camvid_spade_demo")
    res = regenerate_region(model, photo, swapped, mask, seed=3, blend=blend)
    assert res.image.shape == photo.shape and res.image.dtype == np.uint8
    assert np.array_equal(res.image[~res.region], photo[~res.region])
    assert res.region[mask].all() and res.region.mean() < mask.mean() * 1.6
    inside = np.abs(res.image[mask].astype(int) - photo[mask]).mean()
    assert inside > 10                                 # the trees really were replaced
    x0, y0, x1, y1 = res.box
    assert (x1 - x0) * (y1 - y0) < photo.shape[0] * photo.shape[1]   # a crop, not the whole photo
    # the same request is deterministic
    again = regenerate_region(model, photo, swapped, mask, seed=3, blend=blend)
    assert np.array_equal(again.image, res.image)


def test_nothing_changed_returns_the_photo_and_bad_sizes_are_refused(street):
    from engine.regen import regenerate_region
    from engine.registry import load_model

    photo, labels = street
    model = load_model("camvid_spade_demo")
    res = regenerate_region(model, photo, labels, np.zeros(labels.shape, bool))
    assert np.array_equal(res.image, photo) and not res.region.any()
    with pytest.raises(ValueError, match="one size"):
        regenerate_region(model, photo, labels[:10], np.zeros(labels.shape, bool))
    with pytest.raises(ValueError, match="blend"):
        regenerate_region(model, photo, labels, labels == 0, blend="magic")

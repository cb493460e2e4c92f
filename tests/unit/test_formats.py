"""Label-map import/export formats and label-set conversion, on real dataset files."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.labels import LabelIOError, get_labelset, read_label_png
from engine.labels.convert import apply_mapping, default_mapping, read_labelme, unmapped_pixels
from engine.labels.formats import EXPORT_FORMATS, export_labels, import_labels

CS_NAME = "frankfurt_000000_003357_gtFine"


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """The two id maps split the image into the same regions (ids may be numbered differently)."""
    pairs = np.unique(np.stack([a.reshape(-1), b.reshape(-1)]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def test_cityscapes_instance_ids_round_trip(shared, tmp_path):
    d = shared / "datasets/pix2pixHD_samples/cityscapes"
    cs = get_labelset("cityscapes_35")
    src = d / "test_inst" / f"{CS_NAME}_instanceIds.png"
    raw = np.array(Image.open(src)).astype(np.int64)
    got = import_labels(src, cs)                                   # auto: the name says instanceIds
    assert np.array_equal(got.labels, np.where(raw >= 1000, raw // 1000, raw))
    assert np.array_equal(got.labels, read_label_png(d / "test_label" / f"{CS_NAME}_labelIds.png", cs))
    assert got.instances is not None and got.instances.dtype == np.uint16
    assert got.instances.max() == len(np.unique(raw[raw >= 1000]))  # ids 1..n, one per object
    assert _same_partition(got.instances, np.where(raw >= 1000, raw, 0))
    export_labels(tmp_path / "out_instanceIds.png", "cityscapes_instance", got.labels, cs, got.instances)
    back = np.array(Image.open(tmp_path / "out_instanceIds.png")).astype(np.int64)
    assert np.array_equal(np.where(back >= 1000, back // 1000, back), np.where(raw >= 1000, raw // 1000, raw))
    assert _same_partition(back, raw)
    ids = np.unique(back[back >= 1000])
    for c in np.unique(ids // 1000):                               # each class's objects numbered 0..n-1
        assert sorted(ids[ids // 1000 == c] % 1000) == list(range((ids // 1000 == c).sum()))


def test_raw_coco_stuff_round_trip(shared, tmp_path):
    coco = get_labelset("coco_stuff_182")
    f = next((shared / "datasets/coco_stuff_spade_samples/val_label").glob("*.png"))
    lab = import_labels(f, coco, "raw").labels
    raw = np.array(Image.open(f))
    assert np.array_equal(lab[raw != 255], raw[raw != 255]) and np.all(lab[raw == 255] == coco.void_index)
    export_labels(tmp_path / "o.png", "raw", lab, coco)
    assert np.array_equal(np.array(Image.open(tmp_path / "o.png")), raw)


def test_every_export_format_reads_back(shared, tmp_path):
    ls = get_labelset("camvid_11")
    f = next((shared / "datasets/camvid_segnet/valannot").glob("*.png"))
    lab = read_label_png(f, ls)
    inst = np.zeros(lab.shape, np.uint16)
    inst[(lab == 8)] = 1                                            # all cars one instance
    edges = np.zeros(lab.shape, np.uint8)
    edges[100, :] = 255
    for fmt in EXPORT_FORMATS:
        out = export_labels(tmp_path / f"{fmt}.png", fmt, lab, ls, inst, edges)
        img = Image.open(out)
        if fmt == "indexed":
            assert img.mode == "P" and np.array_equal(import_labels(out, ls).labels, lab)
        elif fmt == "colour":
            assert img.mode == "RGB" and np.array_equal(import_labels(out, ls, "colour").labels, lab)
        elif fmt == "raw":
            assert np.array_equal(import_labels(out, ls, "raw").labels, lab)
        elif fmt == "cityscapes_instance":
            assert np.array_equal(import_labels(out, ls, "cityscapes_instance").labels, lab)
        elif fmt == "instances":
            assert np.array_equal(np.array(img), inst)
        else:
            assert np.array_equal(np.array(img), edges)
    with pytest.raises(LabelIOError, match="no instances"):
        export_labels(tmp_path / "x.png", "instances", lab, ls, None)


def test_colour_coded_unknown_colours_become_void_and_are_reported(tmp_path):
    ls = get_labelset("camvid_11")
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[:] = ls.classes[3].color                  # road
    rgb[:2, :3] = (1, 2, 3)                       # 6 px of a colour not in the set
    Image.fromarray(rgb).save(tmp_path / "c.png")
    got = import_labels(tmp_path / "c.png", ls)
    assert np.all(got.labels[:2, :3] == ls.void_index) and (got.labels == 3).sum() == 94
    assert len(got.notes) == 1 and "#010203 (6 px)" in got.notes[0]


def test_labelme_rasterised(tmp_path):
    ls = get_labelset("camvid_11")
    doc = {"version": "5.2.1", "imageWidth": 100, "imageHeight": 80, "imagePath": "x.jpg", "imageData": None,
           "shapes": [
               {"label": "road", "points": [[0, 40], [99, 40], [99, 79], [0, 79]], "shape_type": "polygon",
                "group_id": None},
               {"label": "Car", "points": [[10, 50], [30, 70]], "shape_type": "rectangle", "group_id": None},
               {"label": "car", "points": [[60, 50], [70, 60]], "shape_type": "rectangle", "group_id": None},
               {"label": "person", "points": [[80, 20], [80, 25]], "shape_type": "circle", "group_id": 4},
               {"label": "person", "points": [[88, 20], [90, 22]], "shape_type": "rectangle", "group_id": 4},
               {"label": "unicorn", "points": [[0, 0], [5, 0], [5, 5]], "shape_type": "polygon"},
               {"label": "sky", "points": [[1, 1]], "shape_type": "polygon"},
           ]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    lab, inst, rep = read_labelme(tmp_path / "a.json", ls)
    assert lab.shape == (80, 100)
    assert lab[45, 50] == 3 and lab[0, 99] == ls.void_index
    assert np.all(lab[50:71, 10:31] == 8) and np.all(lab[50:61, 60:71] == 8)
    assert lab[20, 80] == 9 and (lab[20:23, 88:91] == 9).all()      # pedestrian (person's equivalent)
    car1, car2 = inst[60, 20], inst[55, 65]
    assert car1 > 0 and car2 > 0 and car1 != car2                   # separate instances
    assert inst[20, 80] == inst[21, 89] > 0                         # one group_id: one instance
    assert inst[45, 50] == 0                                        # stuff has no instance
    assert rep == {"unknown": {"unicorn": 1}, "skipped": 1}
    got = import_labels(tmp_path / "a.json", ls)
    assert any("unicorn" in n for n in got.notes) and np.array_equal(got.labels, lab)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LabelIOError, match="not a labelme JSON"):
        import_labels(tmp_path / "bad.json", ls)


def test_default_mapping_between_sets(shared):
    cv, cs = get_labelset("camvid_11"), get_labelset("cityscapes_35")
    m = default_mapping(cv, cs)
    names = {cv.classes[k].name: (cs.classes[v].name if v is not None else None) for k, v in m.items()}
    assert names["road"] == "road" and names["pavement"] == "sidewalk" and names["tree"] == "vegetation"
    assert names["pedestrian"] == "person" and names["void"] == "unlabeled"
    back = default_mapping(cs, cv)
    assert cv.classes[back[cs.index_of("truck")]].name == "car"
    assert back[cs.index_of("rail track")] is None                 # nothing fits: left void, and said
    d = shared / "datasets/pix2pixHD_samples/cityscapes/test_label"
    lab = read_label_png(d / f"{CS_NAME}_labelIds.png", cs)
    out = apply_mapping(lab, back, cv)
    assert np.array_equal(out == cv.index_of("road"), lab == cs.index_of("road"))
    assert (out == cv.index_of("tree")).sum() == (lab == cs.index_of("vegetation")).sum() + \
        (lab == cs.index_of("terrain")).sum() * 0                   # terrain has no CamVid class
    lost = unmapped_pixels(lab, back, cs)
    assert all(back[cs.index_of(n)] is None for n in lost) and sum(lost.values()) == int(
        (out == cv.void_index).sum() - (lab == cs.index_of("unlabeled")).sum())

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.labels import (LabelIOError, available_labelsets, boundary_map, get_labelset, import_colour_coded,
                           read_instance_png, read_label_png, resize_nearest, split_cityscapes_instance_ids,
                           write_instance_png, write_label_png, write_raw_label_png, join_cityscapes_instance_ids)


def test_bundled_labelsets(shared):
    assert {"camvid_11", "cityscapes_35", "ade20k_150", "coco_stuff_182"} <= set(available_labelsets())
    cv = get_labelset("camvid_11")
    assert cv.num_indices == 12 and cv.void_index == 11 and cv.classes[8].name == "car"
    assert cv.classes[3].color == (128, 64, 128)          # road, from camvid11.png
    cs = get_labelset("cityscapes_35")
    ref = json.loads((shared / "reference/labelsets/cityscapes_35.json").read_text())
    assert [c.color for c in cs.classes] == [tuple(c["color"]) for c in ref["classes"]]
    assert cs.one_hot_channels == 35 and cs.void_index is None
    assert get_labelset("ade20k_150").one_hot_channels == 151
    assert get_labelset("coco_stuff_182").one_hot_channels == 183


def test_indexed_png_round_trip(tmp_path):
    ls = get_labelset("camvid_11")
    lab = np.random.default_rng(0).integers(0, 12, size=(37, 53))
    write_label_png(tmp_path / "a.png", lab, ls)
    img = Image.open(tmp_path / "a.png")
    assert img.mode == "P"
    assert np.array(img.getpalette()[:36]).reshape(12, 3).tolist() == ls.palette()[:12].tolist()
    assert np.array_equal(read_label_png(tmp_path / "a.png", ls), lab)


def test_colour_coded_import_and_unknown_colours(tmp_path):
    ls = get_labelset("camvid_11")
    lab = np.random.default_rng(1).integers(0, 12, size=(20, 30))
    rgb = ls.palette()[lab]
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert np.array_equal(read_label_png(tmp_path / "c.png", ls), lab)
    rgb[0, 0] = (1, 2, 3)
    rgb[5, 5] = (250, 250, 250)
    with pytest.raises(LabelIOError) as e:
        import_colour_coded(rgb, ls, "c.png")
    assert "#010203" in str(e.value) and "#fafafa" in str(e.value) and "2 colour" in str(e.value)


def test_raw_dataset_ids(tmp_path):
    ade = get_labelset("ade20k_150")
    Image.fromarray(np.array([[0, 1, 150]], np.uint8)).save(tmp_path / "ade.png")
    assert read_label_png(tmp_path / "ade.png", ade).tolist() == [[150, 0, 149]]
    coco = get_labelset("coco_stuff_182")
    Image.fromarray(np.array([[255, 0, 181]], np.uint8)).save(tmp_path / "coco.png")
    lab = read_label_png(tmp_path / "coco.png", coco)
    assert lab.tolist() == [[182, 0, 181]]
    write_raw_label_png(tmp_path / "coco2.png", lab, coco)
    assert np.array(Image.open(tmp_path / "coco2.png")).tolist() == [[255, 0, 181]]


def test_out_of_range_ids_are_an_error(tmp_path):
    Image.fromarray(np.array([[0, 40, 12]], np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(LabelIOError, match="12, 40"):
        read_label_png(tmp_path / "bad.png", get_labelset("camvid_11"))


def test_corrupt_file_is_a_clear_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(LabelIOError, match="x.png: not a readable image"):
        read_label_png(tmp_path / "x.png", get_labelset("camvid_11"))


def test_cityscapes_label_and_instance_ids(shared, tmp_path):
    d = shared / "datasets/pix2pixHD_samples/cityscapes"
    name = "frankfurt_000000_003357_gtFine"
    cs = get_labelset("cityscapes_35")
    lab = read_label_png(d / "test_label" / f"{name}_labelIds.png", cs)
    ids = read_instance_png(d / "test_inst" / f"{name}_instanceIds.png")
    assert ids.max() > 255                                # really 16-bit
    classes, inst = split_cityscapes_instance_ids(ids)
    assert np.array_equal(classes, lab)                   # instanceIds agree with labelIds
    write_instance_png(tmp_path / "i.png", ids)
    assert Image.open(tmp_path / "i.png").mode.startswith("I")
    assert np.array_equal(read_instance_png(tmp_path / "i.png"), ids)
    k = np.array([[0, 1, 2]])
    assert join_cityscapes_instance_ids(np.array([[7, 26, 26]]), k).tolist() == [[7, 26000, 26001]]


@pytest.mark.parametrize("name,key,inst_key", [("spade_coco_like_ngf2.pt", "input_semantics", "instance"),
                                                ("spade_city_like_vae_ngf2.pt", "input_semantics", "instance"),
                                                ("pix2pixhd_global_ngf4.pt", "input_label", "instance")])
def test_boundary_map_matches_official(vectors, name, key, inst_key):
    d = torch.load(vectors / name, weights_only=True)
    inst = d["inputs"][inst_key].numpy()
    edge = boundary_map(inst)
    official = d["inputs"][key][:, -1:].numpy()
    assert official.any() and np.array_equal(edge.astype(np.float32), official)


def test_resize_nearest_matches_torch_and_never_blends():
    lab = np.random.default_rng(2).integers(0, 12, size=(360, 480))
    for size in [(256, 192), (97, 41), (960, 720)]:
        ours = resize_nearest(lab, size)
        ref = F.interpolate(torch.tensor(lab)[None, None].float(), size=size[::-1], mode="nearest")[0, 0].long().numpy()
        assert np.array_equal(ours, ref)
        assert set(np.unique(ours)) <= set(np.unique(lab))

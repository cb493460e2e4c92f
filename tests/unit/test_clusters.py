"""pix2pixHD feature clustering and per-instance styles, on the official local+encoder vector."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cli import main
from engine.clusters import kmeans


def test_kmeans_finds_separated_groups():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.05, size=(40, 3)) for c in (-1.0, 0.0, 1.0)])
    c = np.sort(kmeans(x, 3, seed=1)[:, 0])
    assert np.allclose(c, [-1, 0, 1], atol=0.05)
    assert len(kmeans(x[:2], 10)) == 2                     # never more clusters than samples


@pytest.fixture()
def feat_model(vectors, tmp_path, official_layout):
    """The official LocalEnhancer+Encoder vector saved in the official layout, inspected into a folder."""
    d = torch.load(vectors / "pix2pixhd_local_feat_ngf2.pt", weights_only=True)
    folder = official_layout("tiny_feat", d["state_dict"], d["state_dict_E"])
    assert main(["models", "inspect", str(folder / "latest_net_G.pth"), "--json", "--no-card"]) == 0
    card = json.loads((folder / "card.json").read_text()) if (folder / "card.json").exists() else None
    assert card is None
    return folder, d


def test_cluster_and_generate_per_instance(feat_model, tmp_path, capsys, write_feat_dataset):
    folder, d = feat_model
    capsys.readouterr()
    # 12 input channels = 8 classes + edge + 3 features: no official preset, so name the label set
    assert main(["models", "inspect", str(folder / "latest_net_G.pth")]) == 0
    card = json.loads((folder / "card.json").read_text())
    assert card["family"] == "pix2pixhd" and "encoder" in card["files"]
    card["labelset"] = "deepfashion_8"
    card["options"]["feat_num"] = 3
    (folder / "card.json").write_text(json.dumps(card))
    # a tiny dataset: the vector's photo and maps, plus a flipped copy
    data = tmp_path / "data"
    img, lab, inst = write_feat_dataset(d, data)
    assert main(["models", "cluster", str(folder), "--data", str(data), "--clusters", "2"]) == 0
    card = json.loads((folder / "card.json").read_text())
    assert card["files"]["clusters"]["path"] == "features_clustered.safetensors"
    assert card["clusters"]["images"] == 2 and card["clusters"]["classes"]

    from engine import registry

    lm = registry.load_model(folder)
    assert lm.clusters and all(v.shape[1] == 3 for v in lm.clusters.values())
    cls = next(c for c, v in lm.clusters.items() if len(v) == 2)
    iid = int(np.unique(inst[lab == cls])[0])
    a = registry.generate(lm, lab, inst.astype(np.int64), seed=0, size_wh=(128, 64),
                          controls=registry.StyleControls(instance_clusters={iid: 0}))
    b = registry.generate(lm, lab, inst.astype(np.int64), seed=0, size_wh=(128, 64),
                          controls=registry.StyleControls(instance_clusters={iid: 1}))
    assert not np.array_equal(a, b)                      # a different cluster restyles the instance
    # a style photo goes through the encoder instead (the official test-time path with real images)
    c = registry.generate(lm, lab, inst.astype(np.int64), size_wh=(128, 64),
                          controls=registry.StyleControls(style_image=img), reference=True)
    with torch.no_grad():
        photo = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1    # the photo as given
        feat = lm.encoder(photo, d["inputs"]["instance"].long())
        assert (lm.encoder(d["inputs"]["image"], d["inputs"]["instance"].long())
                - d["intermediates"]["feat_map"]).abs().max() <= 1e-5
        x = torch.cat([d["inputs"]["input_label"], feat], 1)
        want = ((lm.generator(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255)
    assert np.abs(c.astype(float) - np.rint(want)).max() <= 1

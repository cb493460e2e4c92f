import json

import pytest
import torch

from engine.cards import inspect_state_dict
from engine.models.spade import (ConvEncoder, SPADEGenerator, SpadeConfig, infer_config, infer_encoder_config,
                                 load_generator, reparameterize)

VECTORS = [("spade_coco_like_ngf2.pt", "normal"), ("spade_ade_like_most_ngf2.pt", None),
           ("spade_city_like_vae_ngf2.pt", "more")]


@pytest.mark.parametrize("name,ups", VECTORS)
def test_generator_reproduces_official_vectors(vectors, name, ups):
    d = torch.load(vectors / name, weights_only=True)
    cfg = infer_config(d["state_dict"], hint_upsampling=ups, image_hw=tuple(d["config"]["image_hw"]))
    assert cfg.num_upsampling_layers == d["config"]["num_upsampling_layers"]
    assert cfg.use_vae == d["config"]["use_vae"] and cfg.ngf == d["config"]["ngf"]
    g = load_generator(d["state_dict"], cfg)
    assert set(g.state_dict()) == set(d["state_dict"])
    with torch.no_grad():
        out = g(d["inputs"]["input_semantics"], d["inputs"].get("z"))
    assert out.shape == d["output"].shape
    assert (out - d["output"]).abs().max().item() <= 1e-5


def test_vae_encoder_reproduces_official_vector(vectors):
    d = torch.load(vectors / "spade_city_like_vae_ngf2_encoder.pt", weights_only=True)
    e = ConvEncoder(SpadeConfig(semantic_nc=5, ngf=2, **infer_encoder_config(d["state_dict"])))
    e.load_state_dict(d["state_dict"])
    e.eval()
    with torch.no_grad():
        mu, logvar = e(d["inputs"]["image"])
        z = reparameterize(mu, logvar, d["inputs"]["eps"])
    for k, v in {"mu": mu, "logvar": logvar, "z": z}.items():
        assert (v - d["output"][k]).abs().max().item() <= 1e-5


def _meta_sd(shapes: dict) -> dict:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


@pytest.mark.parametrize("name", ["spade_coco.json", "spade_ade20k.json", "spade_cityscapes.json",
                                  "spade_coco_use_vae.json"])
def test_official_manifests_load_key_for_key(manifests, name):
    m = json.loads((manifests / name).read_text())
    opts = m["options"]
    sd_shapes = m["networks"]["G"]["state_dict"]
    info = inspect_state_dict(_meta_sd(sd_shapes), name)
    assert info["family"] == "spade"
    o = info["options"]
    assert o["ngf"] == opts["ngf"] and o["semantic_nc"] == opts["semantic_nc"]
    assert o["num_upsampling_layers"] == opts["num_upsampling_layers"]
    assert o["use_vae"] == opts["use_vae"] and o["norm"] == "batch" and o["spectral"]
    if opts["use_vae"]:
        assert o["latent_hw"] == m["networks"]["G"]["latent_hw"]
    with torch.device("meta"):
        g = SPADEGenerator(SpadeConfig.from_dict(o))
        ours = {k: list(v.shape) for k, v in g.state_dict().items()}
    assert ours == {k: list(v) for k, v in sd_shapes.items()}
    if "E" in m["networks"]:
        e_shapes = m["networks"]["E"]["state_dict"]
        with torch.device("meta"):
            e = ConvEncoder(SpadeConfig.from_dict({**o, **infer_encoder_config(_meta_sd(e_shapes))}))
        assert {k: list(v.shape) for k, v in e.state_dict().items()} == {k: list(v) for k, v in e_shapes.items()}


def test_checkpoint_without_bn_counters_loads(vectors):
    d = torch.load(vectors / "spade_coco_like_ngf2.pt", weights_only=True)
    sd = {k: v for k, v in d["state_dict"].items() if not k.endswith("num_batches_tracked")}
    g = load_generator(sd, infer_config(sd))
    with torch.no_grad():
        assert (g(d["inputs"]["input_semantics"]) - d["output"]).abs().max() <= 1e-5


@pytest.mark.parametrize("name,family", [("smis_deepfashion.json", "groupdnet"), ("smis_ade20k.json", "groupdnet"),
                                         ("smis_cityscapes.json", "groupdnet"),
                                         ("pix2pixhd_label2city_1024p.json", "pix2pixhd"),
                                         ("spade_coco.json", "spade")])
def test_families_are_told_apart(manifests, name, family):
    m = json.loads((manifests / name).read_text())
    assert inspect_state_dict(_meta_sd(m["networks"]["G"]["state_dict"]), name)["family"] == family


def test_photowct_is_refused_as_a_generator(manifests):
    from engine.cards import ModelError

    m = json.loads((manifests / "fastphotostyle_photo_wct.json").read_text())
    net = next(iter(m["networks"].values()))
    with pytest.raises(ModelError, match="PhotoWCT"):
        inspect_state_dict(_meta_sd(net["state_dict"]), "photo_wct.pth")


def test_style_photo_sets_z_through_the_encoder(vectors, tmp_path, official_layout):
    """A user-trained VAE model in the official layout: G and E side by side, loaded with no flags;
    a style photo gives z = mu of the encoder, and without one z is sampled per seed (multimodal)."""
    import numpy as np

    from engine import registry
    from engine.cli import main

    g = torch.load(vectors / "spade_city_like_vae_ngf2.pt", weights_only=True)
    e = torch.load(vectors / "spade_city_like_vae_ngf2_encoder.pt", weights_only=True)
    folder = official_layout("city_vae", g["state_dict"], e["state_dict"])
    assert main(["models", "inspect", str(folder / "latest_net_G.pth"), "--json"]) == 0
    card = json.loads((folder / "card.json").read_text())
    assert card["capabilities"]["style_image"] and "encoder" in card["files"]
    lab = g["inputs"]["label"][0, 0].numpy().astype(np.int64)
    inst = g["inputs"]["instance"][0, 0].numpy().astype(np.int64)
    # build directly: the vector's 5 input channels are 4 classes + edge
    from engine.models.spade import ConvEncoder, SpadeConfig, load_generator

    cfg = infer_config(g["state_dict"], hint_upsampling="more", image_hw=(64, 256))
    gen = load_generator(g["state_dict"], cfg)
    enc = ConvEncoder(SpadeConfig.from_dict({**cfg.to_dict(), **infer_encoder_config(e["state_dict"])}))
    enc.load_state_dict(e["state_dict"])
    enc.eval()
    with torch.no_grad():
        mu, logvar = enc(e["inputs"]["image"])
        assert (mu - e["output"]["mu"]).abs().max() <= 1e-5
        want = gen(g["inputs"]["input_semantics"], mu)
    ls = type("LS", (), {"one_hot_channels": 4, "num_indices": 4, "name": "four", "num_classes": 4})()
    lm = registry.LoadedModel(name="v", family="spade", card=card, labelset=ls, instance_edge=True,
                              resolution=(256, 64), generator=gen, encoder=enc, device=torch.device("cpu"))
    photo = ((e["inputs"]["image"][0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    got = registry.generate(lm, lab, inst, controls=registry.StyleControls(style_image=photo))
    exp = np.rint(((want[0].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255))
    assert np.abs(got.astype(float) - exp).mean() < 2.0     # the photo passes through uint8 once
    a, b = registry.generate(lm, lab, inst, seed=1), registry.generate(lm, lab, inst, seed=2)
    assert not np.array_equal(a, b)                          # sampled z: multimodal output
    assert np.array_equal(a, registry.generate(lm, lab, inst, seed=1))


def test_import_official_folder_brings_the_encoder(vectors, tmp_path, official_layout):
    """`models import checkpoints/<name>/` takes latest_net_G.pth and the encoder beside it."""
    from engine.cli import main
    from engine.registry import load_model, user_models_dir

    d = torch.load(vectors / "pix2pixhd_local_feat_ngf2.pt", weights_only=True)
    folder = official_layout("tiny_feat_import", d["state_dict"], d["state_dict_E"])
    assert main(["models", "import", str(folder), "--labelset", "deepfashion_8"]) == 0
    dest = user_models_dir() / "tiny_feat_import"
    card = json.loads((dest / "card.json").read_text())
    assert set(card["files"]) == {"generator", "encoder"} and card["options"]["feat_num"] == 3
    lm = load_model(dest)
    assert lm.encoder is not None and lm.family == "pix2pixhd"

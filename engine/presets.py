"""The official presets: what checkpoint shapes cannot tell apart, and the official option names.

A checkpoint's shapes fix the architecture up to a few choices that leave no trace in the weights
(SPADE 'normal' vs 'more' upsampling, the training crop size, the dataset mode). The official test
commands fix those per dataset; the input channel count picks the dataset. Each preset also gives the
options of that official test command in the official names, so ``models inspect`` can report them
exactly as the official option parser would.
"""
from __future__ import annotations

# ---- SPADE (NVlabs/SPADE test commands: --name <x>_pretrained --dataset_mode <x>) ------------------
_SPADE_COMMON = {"netG": "spade", "norm_E": "spectralinstance", "nef": 16, "init_type": "xavier",
                 "init_variance": 0.02, "output_nc": 3}

SPADE = {
    184: {"preset": "coco", "labelset": "coco_stuff_182", "instance_edge": True, "resolution": [256, 256],
          "official": {"num_upsampling_layers": "normal", "crop_size": 256, "load_size": 256, "aspect_ratio": 1.0,
                       "preprocess_mode": "resize_and_crop", "label_nc": 182, "contain_dontcare_label": True,
                       "no_instance": False, "dataset_mode": "coco", "name": "coco_pretrained"}},
    151: {"preset": "ade20k", "labelset": "ade20k_150", "instance_edge": False, "resolution": [256, 256],
          "official": {"num_upsampling_layers": "normal", "crop_size": 256, "load_size": 256, "aspect_ratio": 1.0,
                       "preprocess_mode": "resize_and_crop", "label_nc": 150, "contain_dontcare_label": True,
                       "no_instance": True, "dataset_mode": "ade20k", "name": "ade20k_pretrained"}},
    36: {"preset": "cityscapes", "labelset": "cityscapes_35", "instance_edge": True, "resolution": [512, 256],
         "official": {"num_upsampling_layers": "more", "crop_size": 512, "load_size": 512, "aspect_ratio": 2.0,
                      "preprocess_mode": "fixed", "label_nc": 35, "contain_dontcare_label": False,
                      "no_instance": False, "dataset_mode": "cityscapes", "name": "cityscapes_pretrained"}},
    # our own CamVid models (no official checkpoint): no official options to report
    12: {"preset": "camvid", "labelset": "camvid_11", "instance_edge": False, "resolution": [256, 192],
         "official": {"num_upsampling_layers": "normal"}},
    13: {"preset": "camvid+instances", "labelset": "camvid_11", "instance_edge": True, "resolution": [256, 192],
         "official": {"num_upsampling_layers": "normal"}},
}

# ---- GroupDNet / SMIS (Seanseattle/SMIS scripts/*.sh) ---------------------------------------------
_SMIS_COMMON = {"model": "smis", "netE": "conv", "norm_E": "spectralinstance", "use_vae": True, "z_dim": 256,
                "init_type": "xavier", "init_variance": 0.02, "test_mask": -1, "test_times": 1}

GROUPDNET = {
    ("deepfashion", 8): {"preset": "deepfashion", "labelset": "deepfashion_8", "instance_edge": False,
                         "resolution": [256, 256],
                         "official": {"netG": "deepfashion", "num_upsampling_layers": "more", "crop_size": 256,
                                      "load_size": 256, "aspect_ratio": 1.0, "preprocess_mode": "resize_and_crop",
                                      "label_nc": 8, "contain_dontcare_label": False, "no_instance": True,
                                      "dataset_mode": "deepfashion", "name": "deepfashion_smis"}},
    ("cityscapes", 35): {"preset": "cityscapes", "labelset": "cityscapes_35", "instance_edge": True,
                         "resolution": [512, 256],
                         "official": {"netG": "Cityscapes", "num_upsampling_layers": "more", "crop_size": 512,
                                      "load_size": 512, "aspect_ratio": 2.0, "preprocess_mode": "fixed",
                                      "label_nc": 35, "contain_dontcare_label": False, "no_instance": False,
                                      "dataset_mode": "cityscapes", "name": "cityscapes_smis"}},
    ("ade20k", 151): {"preset": "ade20k", "labelset": "ade20k_150", "instance_edge": False,
                      "resolution": [256, 256],
                      "official": {"netG": "ADE20K", "num_upsampling_layers": "more", "crop_size": 256,
                                   "load_size": 256, "aspect_ratio": 1.0, "preprocess_mode": "resize_and_crop",
                                   "label_nc": 150, "contain_dontcare_label": True, "no_instance": True,
                                   "dataset_mode": "ade20k", "name": "ade20k_smis"}},
}

# ---- pix2pixHD (NVIDIA/pix2pixHD scripts/test_1024p.sh, test_512p.sh) ------------------------------
_P2P_COMMON = {"norm": "instance", "label_feat": False, "nef": 16, "n_downsample_E": 4, "n_clusters": 10,
               "loadSize": 1024, "fineSize": 512, "output_nc": 3, "data_type": 32, "use_dropout": False,
               "n_local_enhancers": 1, "n_blocks_local": 3, "feat_num": 3}

PIX2PIXHD = {
    # (netG, generator input channels) -> preset; cityscapes label ids: 35 classes + instance edge [+ 3 features]
    ("local", 36): {"preset": "label2city_1024p", "resolution": [2048, 1024], "feat": False,
                    "official": {"name": "label2city_1024p", "resize_or_crop": "none"}},
    ("local", 39): {"preset": "label2city_1024p_feat", "resolution": [2048, 1024], "feat": True,
                    "official": {"name": "label2city_1024p_feat", "resize_or_crop": "none"}},
    ("global", 36): {"preset": "label2city_512p", "resolution": [1024, 512], "feat": False,
                     "official": {"name": "label2city_512p", "resize_or_crop": "scale_width"}},
    ("global", 39): {"preset": "label2city_512p_feat", "resolution": [1024, 512], "feat": True,
                     "official": {"name": "label2city_512p_feat", "resize_or_crop": "scale_width"}},
}
PIX2PIXHD_LABELSET = "cityscapes_35"


def _norm_g(cfg) -> str:
    """The official ``--norm_G`` string, e.g. ``spectralspadesyncbatch3x3``."""
    return ("spectral" if cfg.spectral else "") + "spade" + ("syncbatch" if cfg.norm == "batch" else "instance") + \
        f"{cfg.spade_ks}x{cfg.spade_ks}"


def spade_official(cfg, preset: dict | None) -> dict:
    """Official SPADE option names and values for an inferred config and its preset."""
    norm = _norm_g(cfg)
    out = dict(_SPADE_COMMON, ngf=cfg.ngf, norm_G=norm, semantic_nc=cfg.semantic_nc, use_vae=cfg.use_vae,
               z_dim=cfg.z_dim, num_upsampling_layers=cfg.num_upsampling_layers)
    if preset:
        out.update(preset["official"])
    out["num_upsampling_layers"] = cfg.num_upsampling_layers
    return out


def groupdnet_official(cfg, preset: dict | None) -> dict:
    norm = _norm_g(cfg)
    out = dict(_SMIS_COMMON, ngf=cfg.ngf, norm_G=norm, semantic_nc=cfg.num_classes,
               num_upsampling_layers=cfg.num_upsampling_layers)
    if preset:
        out.update(preset["official"])
    return out


def pix2pixhd_official(cfg, preset: dict | None, encoder: dict | None = None) -> dict:
    feat = cfg.feat_num > 0
    label_nc = cfg.input_nc - 1 - (cfg.feat_num if feat else 0)
    out = dict(_P2P_COMMON, netG=cfg.netG, ngf=cfg.ngf, n_downsample_global=cfg.n_downsample_global,
               n_blocks_global=cfg.n_blocks_global, label_nc=label_nc, no_instance=False, instance_feat=feat,
               netG_input_nc=cfg.input_nc, output_nc=cfg.output_nc)
    if cfg.netG == "local":
        out.update(n_local_enhancers=cfg.n_local_enhancers, n_blocks_local=cfg.n_blocks_local)
    if feat:
        out["feat_num"] = cfg.feat_num
    if encoder:
        out.update(nef=encoder["ngf"], n_downsample_E=encoder["n_downsampling"])
    if preset:
        out.update(preset["official"])
    return out

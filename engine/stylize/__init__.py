"""Photorealistic stylization (PhotoWCT + closed-form smoothing, Li et al. ECCV 2018): the engine side.

- :mod:`.wct`: whitening and colouring of features, whole-image or region by region.
- :mod:`.smooth`: the closed-form smoothing (exact, matrix-free solve) and the guided-filter fast mode.
"""


def bundled_styles() -> list[dict]:
    """The style photos shipped in resources/styles: ``{"path", "title", "licence", "source"}`` each."""
    import json

    from ..paths import resources_dir

    d = resources_dir() / "styles"
    try:
        meta = json.loads((d / "styles.json").read_text())
    except (OSError, ValueError):
        return []
    return [{**e, "path": str(d / e["file"])} for e in meta.get("styles", []) if (d / e["file"]).exists()]

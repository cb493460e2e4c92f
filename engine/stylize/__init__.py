"""Photorealistic stylization (PhotoWCT + closed-form smoothing, Li et al. ECCV 2018): the engine side.

- :mod:`.wct`: whitening and colouring of features, whole-image or region by region.
- :mod:`.smooth`: the closed-form smoothing (exact, matrix-free solve) and the guided-filter fast mode.
"""

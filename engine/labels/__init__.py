"""Label sets, label-map IO, boundary maps and nearest-only resizing (numpy; no torch at import)."""
from .io import (LabelIOError, atomic_write_bytes, colorize, import_colour_coded, join_cityscapes_instance_ids,
                 read_instance_png, read_label_png, save_image_atomic, split_cityscapes_instance_ids,
                 write_instance_png, write_label_png, write_raw_label_png)
from .labelsets import LabelClass, LabelSet, available_labelsets, decode_raw, encode_raw, get_labelset
from .maps import boundary_map, check_label_range, resize_nearest, semantics_tensor

__all__ = [
    "LabelIOError", "LabelClass", "LabelSet", "atomic_write_bytes", "available_labelsets", "boundary_map",
    "check_label_range", "colorize", "decode_raw", "encode_raw", "get_labelset", "import_colour_coded",
    "join_cityscapes_instance_ids", "read_instance_png", "read_label_png", "resize_nearest",
    "save_image_atomic", "semantics_tensor", "split_cityscapes_instance_ids", "write_instance_png",
    "write_label_png", "write_raw_label_png",
]

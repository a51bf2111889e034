"""The largest file of each kind a dataset takes: refused when an upload session is asked for one larger (413),
and never read whole past them where the file is read (ingest, the API). Pure: the API imports it without Pillow."""
from __future__ import annotations

from common.domain.datayaml import MAX_DATA_YAML_BYTES

MIB = 1024 * 1024
MAX_LABEL_BYTES = 4 * MIB  # a YOLO label of 10,000 rows (labels.MAX_LABEL_ROWS) takes under 1 MiB
# A 50-megapixel image (imaging.MAX_IMAGE_PIXELS) as an uncompressed 16-bit RGBA TIFF takes 400 MB; the photos
# and frames datasets hold are a few MB, PNGs of big scans tens of MB.
MAX_IMAGE_BYTES = 256 * MIB
LIMITS = {"label": MAX_LABEL_BYTES, "data_yaml": MAX_DATA_YAML_BYTES, "image": MAX_IMAGE_BYTES}
KIND_NAMES = {"label": "a label file", "data_yaml": "a data.yaml", "image": "an image"}


def size_refusal(kind: str, size: int) -> str | None:
    """Why a file of `kind` (layout.classify's) and `size` bytes is not taken; None when it is."""
    limit = LIMITS.get(kind)
    if limit is None or size <= limit:
        return None
    return (f"{KIND_NAMES[kind]} may be at most {limit} bytes ({limit / MIB:g} MiB) and this one declares {size}: "
            "make it smaller")

"""Pictures as the page sends and receives them: data URLs in, data URLs out."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

# A canvas, a photo or a webcam frame; larger is not a picture the page would send.
MAX_PIXELS = 4096 * 4096
_PREFIX = "data:image/"


@dataclass(frozen=True)
class Picture:
    """What the page paints for one request: the encoded image and the seed it was made with."""

    data_url: str
    seed: int
    note: str | None = None  # e.g. the strength was raised so that a step runs


def decode_data_url(text: str) -> Any:
    """A ``data:image/…;base64,…`` URL -> an RGB PIL image; ValueError with a sentence for anything else."""
    from PIL import Image, UnidentifiedImageError

    head, comma, payload = text.partition(",")
    if not (head.startswith(_PREFIX) and head.endswith(";base64") and comma):
        raise ValueError("image must be a data URL (data:image/png;base64,…).")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image is not valid base64.") from None
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"image is {image.width}×{image.height}; send at most {MAX_PIXELS} pixels.")
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ValueError("image is not a PNG, JPEG or WebP picture the server can read.") from None


def encode_data_url(image: Any, kind: str = "JPEG", quality: int = 90) -> str:
    """A PIL image -> a data URL the page can show; JPEG is several times smaller than PNG at this size."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=kind, **({"quality": quality} if kind == "JPEG" else {}))
    return f"data:image/{kind.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"

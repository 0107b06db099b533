"""Checking and normalising images before they are stored and sent to the model.

The gateway takes JPEG/PNG/GIF/WEBP up to 10 MB as base64 data URLs. Anything else that
Pillow can read is converted; huge images are scaled down; unreadable ones are refused
with a sentence the user can act on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 2048  # larger images cost tokens without helping the model
MAX_PIXELS = 60_000_000  # refuse decompression bombs before decoding
# Memory for one decoded bitmap. Only JPEG can be decoded reduced (draft), so a PNG, WEBP or
# GIF above this (16 MP in RGB/RGBA, 64 MP greyscale/palette) is refused rather than decoded:
# a 250 KB 7,700 × 7,700 RGBA PNG otherwise costs over 500 MB while it is scaled.
DECODE_BUDGET = 64 * 1024 * 1024
REDUCING_GAP = 2.0


@dataclass(slots=True)
class PreparedImage:
    data: bytes
    mime: str
    width: int
    height: int


class ImageRejected(ValueError):
    """The image cannot be used; ``str(exc)`` is worded for the user."""


def prepare_image(data: bytes, filename: str = "") -> PreparedImage:
    label = f"“{filename}”" if filename else "the image"
    if not data:
        raise ImageRejected(f"{label} was empty")
    # Pillow is imported on first use: most processes never see an image (memory at start).
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or ""
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise ImageRejected(f"{label} is too large ({width}×{height} pixels)")
            probe.verify()  # catches truncated and corrupt files
    except ImageRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"{label} could not be read as an image ({type(exc).__name__})") from None
    if fmt in ACCEPTED and len(data) <= MAX_BYTES and max(width, height) <= MAX_SIDE:
        return PreparedImage(data, ACCEPTED[fmt], width, height)
    return _reencode(data, label)


def _reencode(data: bytes, label: str) -> PreparedImage:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if getattr(img, "is_animated", False):
                img.seek(0)  # the first frame speaks for an animation
            width, height = img.size
            scale = MAX_SIDE / max(width, height)
            target = (max(1, round(width * scale)), max(1, round(height * scale)))
            if scale < 1:
                # JPEG decodes at 1/2, 1/4 or 1/8 size directly: a 60 MP photo never exists whole.
                img.draft(None, target)
            decoded = img.size[0] * img.size[1] * _bytes_per_pixel(img.mode)
            if decoded > DECODE_BUDGET:
                megapixels = DECODE_BUDGET // _bytes_per_pixel(img.mode) // 1_000_000
                raise ImageRejected(
                    f"{label} is too large to process ({width}×{height} pixels); please send a smaller "
                    f"version (up to about {megapixels} megapixels) or a JPEG"
                )
            # reducing_gap: shrink by whole factors first (cheap), then resample the small image.
            img.thumbnail((MAX_SIDE, MAX_SIDE), reducing_gap=REDUCING_GAP)
            has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
            out = io.BytesIO()
            if has_alpha:
                img.convert("RGBA").save(out, "PNG", optimize=True)
                mime = "image/png"
            else:
                img.convert("RGB").save(out, "JPEG", quality=88)
                mime = "image/jpeg"
            size = img.size
    except ImageRejected:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"{label} could not be converted ({type(exc).__name__})") from None
    encoded = out.getvalue()
    if len(encoded) > MAX_BYTES:
        raise ImageRejected(f"{label} is still larger than 10 MB after scaling down")
    return PreparedImage(encoded, mime, size[0], size[1])


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow keeps in memory per pixel: one byte for 1/L/P, two for 16-bit, else four
    (RGB is stored padded to four bytes)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4

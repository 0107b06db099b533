"""PNG files built chunk by chunk, as the PNG spec lays them out: card chunks before or after
the image data, tEXt / zTXt / iTXt, headers that claim any size, files cut short."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(cid: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data))


def text(key: str, value: str) -> bytes:
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))


def ztext(key: str, value: str) -> bytes:
    return chunk(b"zTXt", key.encode("latin-1") + b"\0\0" + zlib.compress(value.encode("latin-1")))


def itext(key: str, value: str, *, compressed: bool = False) -> bytes:
    body = zlib.compress(value.encode("utf-8")) if compressed else value.encode("utf-8")
    return chunk(b"iTXt", key.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + body)


def card_b64(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


def png(
    width: int = 4,
    height: int = 4,
    *,
    before: tuple[bytes, ...] = (),
    after: tuple[bytes, ...] = (),
    idat: bytes | None = None,
) -> bytes:
    """An 8-bit RGB image (grey pixels unless ``idat`` is given) with extra chunks before the
    image data (``before``, as Pillow writes them) or after it (``after``, as SillyTavern does)."""
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if idat is None:
        idat = zlib.compress(b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height)))
    return SIGNATURE + ihdr + b"".join(before) + chunk(b"IDAT", idat) + b"".join(after) + chunk(b"IEND", b"")

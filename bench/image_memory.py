"""Peak memory of ``bot.images.prepare_image`` on images that are small files but huge bitmaps.

Each case runs in a fresh subprocess, which reports its peak RSS (``resource.getrusage``)
after importing the module and after preparing the image, so the figures are the image's cost.

    python -m bench.image_memory
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys
from bot.images import ImageRejected, prepare_image
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    out = prepare_image(data, "big")
    result = f"accepted {out.width}x{out.height} {out.mime} {len(out.data)} bytes"
except ImageRejected as exc:
    result = f"refused: {exc}"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, "result": result}))
"""


def big_png(width: int, height: int, *, mode: str = "RGB") -> bytes:
    """A valid PNG of ``width`` × ``height`` built row by row (never a whole bitmap in memory):
    a soft gradient, so the file stays a few hundred KB like the one from the issue."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    colour = {"L": 0, "RGB": 2, "RGBA": 6}[mode]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    idat = bytearray()
    for y in range(height):
        row = bytes([(y * 255 // max(1, height - 1))]) * (width * channels)
        idat += packer.compress(b"\x00" + row)
    idat += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b"")


def big_jpeg(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 160, 200)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True, cwd=ROOT)
    figures = json.loads(out.stdout)
    figures["cost_mb"] = round((figures["after_kb"] - figures["before_kb"]) / 1024, 1)
    figures["peak_mb"] = round(figures["after_kb"] / 1024, 1)
    return figures


CASES = {
    "PNG 7700x7700 RGB": lambda: big_png(7700, 7700),
    "PNG 7700x7700 RGBA": lambda: big_png(7700, 7700, mode="RGBA"),
    "PNG 7700x7700 L": lambda: big_png(7700, 7700, mode="L"),
    "PNG 4000x3000 RGB": lambda: big_png(4000, 3000),
    "JPEG 7700x7700": lambda: big_jpeg(7700, 7700),
}


def main() -> None:
    if sys.argv[1:2] == ["make"]:  # in its own process: a child inherits its parent's peak RSS
        folder = Path(sys.argv[2])
        for i, make in enumerate(CASES.values()):
            (folder / f"{i}.img").write_bytes(make())
        return
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "bench.image_memory", "make", folder], check=True, cwd=ROOT)
        for i, name in enumerate(CASES):
            path = Path(folder) / f"{i}.img"
            m = measure(path)
            print(
                f"{name:20} file {path.stat().st_size // 1024:6} KB  peak RSS {m['peak_mb']:7} MB  "
                f"(+{m['cost_mb']} MB for the image)  {m['result']}"
            )


if __name__ == "__main__":
    main()

"""`bot run` keeps rarely used heavy modules out of memory until first use (peak RSS)."""
from __future__ import annotations

import subprocess
import sys

LAZY = ("PIL", "json_repair", "redis")  # images, copywriting's JSON repair, REDIS_URL only


def test_start_does_not_load_rarely_used_modules() -> None:
    code = ("import sys, bot.process.serve, adapters.telegram.app, adapters.slack.adapter\n"
            f"print(','.join(m for m in {LAZY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_lazy_modules_still_load_on_use() -> None:
    from bot.copywriting.structured import parse_variants  # noqa: F401 - the module imports cleanly
    from bot.images import ImageRejected, prepare_image

    try:
        prepare_image(b"not an image", "x.png")
    except ImageRejected as exc:
        assert "could not be read" in str(exc)
    else:
        raise AssertionError("garbage accepted as an image")
    assert "PIL" in sys.modules

"""`bot run` keeps rarely used heavy modules out of memory until first use (peak RSS)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

LAZY = ("PIL", "json_repair", "redis")  # images, copywriting's JSON repair, REDIS_URL only


def test_start_does_not_load_rarely_used_modules() -> None:
    code = (
        "import sys, bot.process.serve, adapters.telegram.app, adapters.slack.adapter\n"
        f"print(','.join(m for m in {LAZY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_feishu_sdk_loads_only_when_feishu_is_configured() -> None:
    """lark-oapi takes seconds and ~160 MB to import: reading Feishu's settings (every `bot run`
    does) must not load it; only its adapter, started when FEISHU_APP_ID is set, does."""
    code = (
        "import sys, bot.process.serve\n"
        "from importlib.metadata import entry_points\n"
        "for entry in entry_points(group='chatbot.platforms'):\n"
        "    plugin = entry.load()\n"
        "    assert not plugin.settings.load().configured(), plugin.name\n"
        "print('feishu' in {e.name for e in entry_points(group='chatbot.platforms')}, 'lark_oapi' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEISHU_")}
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=tempfile.gettempdir()
    ).stdout.strip()
    assert loaded == "True False"


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


def test_run_refuses_the_extras_its_libraries_would_load_for_nothing() -> None:
    """httpx loads its command-line client (rich, pygments) and python-telegram-bot loads
    cryptography for Telegram Passport whenever they are installed: ~10 MB `bot run` never uses.
    Refused while they load, each library takes its own fallback; the modules stay importable
    after the adapter has loaded. Without the admin page, its login rate's parser (limits) is
    not loaded either, nor the terminal's folders (platformdirs)."""
    code = (
        "import sys\n"
        "from bot.lean import refuse\n"
        "refuse('rich', 'pygments')\n"
        "from bot.config import load_settings\n"
        "from bot.platform.discovery import plugins\n"
        "load_settings()\n"
        "found = plugins()\n"
        "found['telegram'].load(); found['slack'].load()\n"
        "import bot.process.serve, httpx, telegram\n"
        "print(','.join(m for m in ('rich', 'pygments', 'cryptography', 'limits', 'platformdirs')\n"
        "               if m in sys.modules))\n"
        "import cryptography.hazmat.primitives.hashes\n"
        "print(httpx.URL('https://example.com/a').path)"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CONSOLE_"))},
        "BYTESPIKE_API_KEY": "k",
        "BOT_ADMIN_PAGE": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=tempfile.gettempdir()
    )
    assert done.stdout.split("\n")[:2] == ["", "/a"], done.stdout


def test_run_pins_glibc_malloc_thresholds() -> None:
    """glibc raises its mmap and trim thresholds after the first big free, and then keeps
    freed heap space: pinned at start, the heap stops creeping up (the soak, docs/benchmarks.md)."""
    from bot.lean import steady_malloc

    if not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6") and not os.path.exists("/usr/lib/libc.so.6"):
        return  # not glibc: nothing to pin
    assert steady_malloc() is True

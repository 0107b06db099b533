"""Images within a memory budget, PostgreSQL liveness after a dropped connection, secrets."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from PIL import Image

from bench.image_memory import big_png
from bot.images import ImageRejected, prepare_image
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from tests.conftest import PG_URL, _pg_admin_url
from tests.fakes.gateway import Answer
from tests.polling import eventually
from tests.surfaces import RecordingSurface


# ---- images --------------------------------------------------------------------------------
def test_a_huge_png_that_cannot_be_decoded_cheaply_is_refused_with_a_clear_sentence() -> None:
    data = big_png(7700, 7700, mode="RGBA")  # ~250 KB on disk, ~230 MB decoded
    assert len(data) < 400_000
    with pytest.raises(ImageRejected) as refused:
        prepare_image(data, "poster.png")
    assert "“poster.png” is too large to process (7700×7700 pixels)" in str(refused.value)
    assert "megapixels" in str(refused.value)


def test_a_large_greyscale_png_within_the_budget_is_accepted_and_scaled() -> None:
    out = prepare_image(big_png(6000, 4000, mode="L"), "scan.png")
    assert (out.width, out.height) == (2048, 1365) and out.mime == "image/jpeg"


def test_a_large_jpeg_is_decoded_reduced_and_scaled() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (5000, 3000), (120, 160, 200)).save(buf, "JPEG", quality=70)
    out = prepare_image(buf.getvalue(), "photo.jpg")
    assert max(out.width, out.height) == 2048 and out.mime == "image/jpeg"
    assert Image.open(io.BytesIO(out.data)).size == (out.width, out.height)


# ---- secrets -------------------------------------------------------------------------------
def test_a_short_webhook_secret_is_refused_in_one_line() -> None:
    from bot.config import SettingsError
    from tests.platforms import platform_settings

    with pytest.raises(SettingsError) as err:
        platform_settings("telegram", TELEGRAM_WEBHOOK_SECRET="abc")
    [line] = err.value.lines
    assert line.startswith("TELEGRAM_WEBHOOK_SECRET: must be at least 16 characters") and "abc" not in line


def test_every_configured_secret_is_masked_whatever_its_length() -> None:
    from bot.process.logs import RedactingFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s token=%s", ("k3y9", "abcdefghijklmnopq"), None)
    RedactingFilter(["k3y9", "abcdefghijklmnopq"]).filter(record)
    assert record.getMessage() == "key=[redacted] token=[redacted]"


# ---- PostgreSQL liveness -------------------------------------------------------------------
KEY = ConversationKey("console", "local", "alice")


@pytest.mark.skipif(not PG_URL, reason="postgres only: processes prove they are alive with advisory locks")
async def test_a_dropped_liveness_connection_does_not_make_a_live_answer_look_dead(settings, fake_gateway) -> None:
    import asyncpg

    release = asyncio.Event()
    fake_gateway.script(
        Answer(text="one answer from process A", reasoning="r", chunk_size=4, wait_for=release, pause_after=9)
    )
    a = await build_runtime(settings, migrate=False)
    surface = RecordingSurface()
    task = asyncio.create_task(
        a.service.handle(
            IncomingMessage(key=KEY, author=Author("alice", "Alice"), text="question", message_id="m1"), surface
        )
    )
    await eventually(lambda: surface.order)
    admin = await asyncpg.connect(_pg_admin_url(settings.database_url.replace("+asyncpg", "")))
    try:
        killed = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objsubid = 1"  # the liveness lock's one-bigint key (conversation locks use two ints)
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert len(killed) == 1, "process A's liveness lock connection was dropped"
        b = await build_runtime(settings, migrate=False)  # starts during the gap
        try:
            assert b.service.interrupted == []
            release.set()
            await task
            assert surface.texts == ["one answer from process A"]
            held = await admin.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            assert held == 2, "A took its lock again (B holds its own)"
        finally:
            await b.close()
    finally:
        await admin.close()
        await a.close()

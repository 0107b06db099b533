"""The asyncio network backend under httpx: TLS, keep-alive, and parity with httpx's default."""
from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from bot.config import Settings
from bot.gateway.client import GatewayClient
from bot.gateway.errors import StreamInterrupted
from bot.gateway.events import ChatRequest, TextDelta
from tests.fakes.gateway import Answer, FakeGateway


def settings(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"BYTESPIKE_API_KEY": "test-key", "BYTESPIKE_BASE_URL": base_url,
                                 "BOT_RETRY_BASE_DELAY": 0.001, "_env_file": None}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


ASK = ChatRequest(messages=[{"role": "user", "content": "hello"}])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_streams_over_tls(certificate):
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    trust = ssl.create_default_context(cafile=str(cert))
    async with FakeGateway(ssl_context=server) as gw:
        assert gw.base_url.startswith("https://")
        gw.script(Answer(text="secure hello", reasoning="r", chunk_size=3, chunk_delay=0.001))
        async with GatewayClient(settings(gw.base_url), verify=trust) as client:
            assert (await client.complete(ASK)).text == "secure hello"
            assert (await client.complete(ASK)).text == "echo: hello"
        assert gw.requests[0].peer == gw.requests[1].peer  # one TLS connection, kept alive


async def test_tls_with_an_untrusted_certificate_fails_clearly(certificate):
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    async with FakeGateway(ssl_context=server) as gw:
        async with GatewayClient(settings(gw.base_url, BOT_MAX_RETRIES=0)) as client:
            with pytest.raises(Exception) as info:
                await client.complete(ASK)
    assert getattr(info.value, "kind", None) == "network"
    assert gw.requests == []


@pytest.mark.parametrize("fast", [True, False])
async def test_connection_kept_alive_between_answers(fast):
    async with FakeGateway() as gw:
        async with GatewayClient(settings(gw.base_url), fast_transport=fast) as client:
            for _ in range(3):
                await client.complete(ASK)
        assert len({r.peer for r in gw.requests}) == 1


@pytest.mark.parametrize("fast", [True, False])
async def test_cut_stream_same_on_both_backends(fast):
    async with FakeGateway() as gw:
        gw.script(Answer(text="abcdefghijklmnopqrstuvwxyz", reasoning="r", chunk_size=2, cut_after=12,
                         chunk_delay=0.001))
        async with GatewayClient(settings(gw.base_url), fast_transport=fast) as client:
            text = []
            with pytest.raises(StreamInterrupted):
                async for event in client.stream(ASK):
                    if isinstance(event, TextDelta):
                        text.append(event.text)
    assert "abcdefghijklmnopqrstuvwxyz".startswith("".join(text)) and text


async def test_large_answer_through_the_backend():
    text = "长文本 " * 20000 + "end"  # more than the backend's read buffer high-water mark
    async with FakeGateway() as gw:
        gw.script(Answer(text=text, reasoning="r", chunk_size=500))
        async with GatewayClient(settings(gw.base_url)) as client:
            assert (await client.complete(ASK)).text == text


async def test_slow_but_steady_stream_is_not_a_timeout():
    # Each chunk comes well within the read timeout; the whole answer takes longer than it.
    async with FakeGateway() as gw:
        gw.script(Answer(text="steady " * 12, reasoning="r", chunk_size=7, chunk_delay=0.04))
        async with GatewayClient(settings(gw.base_url, BOT_READ_TIMEOUT=0.25, BOT_MAX_RETRIES=0)) as client:
            assert (await client.complete(ASK)).text == "steady " * 12


async def test_stall_mid_answer_is_an_interruption():
    gate = asyncio.Event()
    async with FakeGateway() as gw:
        gw.script(Answer(text="first words then a stall", reasoning="r", chunk_size=6, wait_for=gate,
                         pause_after=5))
        async with GatewayClient(settings(gw.base_url, BOT_READ_TIMEOUT=0.1)) as client:
            text = []
            with pytest.raises(StreamInterrupted):
                async for event in client.stream(ASK):
                    if isinstance(event, TextDelta):
                        text.append(event.text)
        gate.set()
    assert "".join(text) and "first words then a stall".startswith("".join(text))
    assert len(gw.requests) == 1


async def test_cut_after_finish_reason_still_completes():
    async with FakeGateway() as gw:
        # 3 content chunks, the finish chunk, then the connection drops (usage and [DONE] lost).
        gw.script(Answer(text="abcdefghi", chunk_size=3, cut_after=4, usage="final_chunk"))
        async with GatewayClient(settings(gw.base_url)) as client:
            result = await client.complete(ASK)
    assert (result.text, result.finish_reason, result.usage) == ("abcdefghi", "stop", None)
    assert len(gw.requests) == 1

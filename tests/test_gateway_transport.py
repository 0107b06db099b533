"""Our httpx transport (httpcore's public pool on the asyncio backend): TLS, keep-alive,
httpx's exceptions for every failure, connections freed on close, and parity with stock httpx."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.gateway.client import GatewayClient
from bot.gateway.errors import StreamInterrupted
from bot.gateway.events import ChatRequest, TextDelta
from bot.gateway.transport import AsyncioStream, AsyncioTransport
from tests.fakes.gateway import Answer, FakeGateway


def settings(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "BYTESPIKE_API_KEY": "test-key",
        "BYTESPIKE_BASE_URL": base_url,
        "BOT_RETRY_BASE_DELAY": 0.001,
        "_env_file": None,
    }
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
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
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
        gw.script(
            Answer(text="abcdefghijklmnopqrstuvwxyz", reasoning="r", chunk_size=2, cut_after=12, chunk_delay=0.001)
        )
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
        gw.script(Answer(text="first words then a stall", reasoning="r", chunk_size=6, wait_for=gate, pause_after=5))
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


# --- the transport on its own, under a plain httpx.AsyncClient ------------------------------

LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=30.0)


def http(limits: httpx.Limits = LIMITS, **timeouts: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AsyncioTransport(limits), timeout=httpx.Timeout(5.0, **timeouts))


@asynccontextmanager
async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A TCP server that answers with whatever bytes ``handle`` writes (or none)."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def test_requests_run_on_the_asyncio_backend():
    async with FakeGateway() as gw, http() as client:
        async with client.stream(
            "POST", f"{gw.base_url}/v1/chat/completions", json=BODY, headers={"Authorization": "Bearer test-key"}
        ) as response:
            assert response.status_code == 200
            assert isinstance(response.extensions["network_stream"], AsyncioStream)
            assert response.http_version == "HTTP/1.1"
            body = await response.aread()
    assert body.endswith(b"data: [DONE]\n\n")


async def test_refused_connection_is_httpx_connect_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with http() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_silent_server_is_httpx_read_timeout():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(silent) as url, http(read=0.1) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url)


async def test_garbage_instead_of_http_is_httpx_remote_protocol_error():
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"this is not HTTP at all\r\n\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(garbage) as url, http() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_body_cut_short_is_an_httpx_error_while_streaming():
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
        await writer.drain()
        writer.close()

    async with raw_server(cut) as url, http() as client:
        async with client.stream("GET", url) as response:
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()


async def test_full_pool_is_httpx_pool_timeout_and_closing_frees_the_slot():
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    gate = asyncio.Event()
    async with FakeGateway() as gw, http(one, pool=0.2) as client:
        gw.script(Answer(text="held open", chunk_size=2, wait_for=gate, pause_after=2))
        url, headers = f"{gw.base_url}/v1/chat/completions", {"Authorization": "Bearer test-key"}
        first = await client.send(client.build_request("POST", url, json=BODY, headers=headers), stream=True)
        chunks = first.aiter_bytes()
        await anext(chunks)  # the answer has begun and is now stalled, holding the only connection
        with pytest.raises(httpx.PoolTimeout):
            await client.post(url, json=BODY, headers=headers)
        await first.aclose()  # closes the httpcore response: the slot is free again
        second = await client.post(url, json=BODY, headers=headers)
        assert second.status_code == 200 and second.content.endswith(b"data: [DONE]\n\n")
        gate.set()
        del chunks


BODY = {"model": "minimax-m2.7", "messages": [{"role": "user", "content": "hi"}], "stream": True}

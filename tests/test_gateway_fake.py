"""The fake gateway itself: it must reject what the real gateway rejects."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.fakes.gateway import Answer, FakeGateway


@pytest.fixture
async def gw():
    async with FakeGateway() as gateway:
        yield gateway


def body(**overrides: object) -> dict:
    values: dict = {
        "model": "minimax-m2.7",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "max_tokens": 100,
        "temperature": 1.0,
    }
    values.update(overrides)
    return values


async def post(gw: FakeGateway, payload: dict, key: str | None = "test-key") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{gw.base_url}/v1/chat/completions", json=payload, headers=headers)


def chunks_of(sse: str) -> list[dict]:
    datas = [line[len("data: ") :] for line in sse.split("\n") if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    return [json.loads(d) for d in datas[:-1]]


def content_of(sse: str) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks_of(sse) if c["choices"])


async def test_rejects_a_missing_or_wrong_key(gw):
    assert (await post(gw, body(), key=None)).status_code == 401
    assert (await post(gw, body(), key="nope")).status_code == 401
    assert gw.requests[0].authorization is None
    assert gw.requests[1].authorization == "Bearer nope"


@pytest.mark.parametrize("bad", [{"tools": []}, {"temperature": 0}, {"n": 2}, {"max_tokens": 16385}, {"messages": []}])
async def test_rejects_what_the_real_gateway_rejects(gw, bad):
    response = await post(gw, body(**bad))
    assert response.status_code == 400
    assert response.json()["error"]["message"]


async def test_streams_sse_with_done(gw):
    response = await post(gw, body())
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = chunks_of(response.text)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] > 0  # usage-only
    assert content_of(response.text) == "<think>The user wrote something; echo it.</think>\n\necho: hi"


async def test_non_streaming_request_gets_a_json_completion(gw):
    gw.script(Answer(text="whole"))
    response = await post(gw, body(stream=False))
    assert response.json()["choices"][0]["message"]["content"] == "<think></think>\n\nwhole"


async def test_hold_blocks_answers_until_released(gw):
    gw.hold()
    task = asyncio.create_task(post(gw, body()))
    await gw.wait_for_requests(1)
    await asyncio.sleep(0.05)  # the behaviour under test: given time, a held answer still waits
    assert not task.done() and gw.active == 1
    gw.release()
    assert content_of((await task).text).endswith("echo: hi")
    assert gw.active == 0


async def test_wait_for_after_some_chunks(gw):
    gate = asyncio.Event()
    gw.script(Answer(text="abcdef", chunk_size=2, wait_for=gate, pause_after=2))
    chunks: list[bytes] = []
    async with httpx.AsyncClient() as http:
        async with http.stream(
            "POST", f"{gw.base_url}/v1/chat/completions", json=body(), headers={"Authorization": "Bearer test-key"}
        ) as response:
            stream = response.aiter_bytes()
            while b"cd" not in b"".join(chunks):
                chunks.append(await stream.__anext__())
            assert b"ef" not in b"".join(chunks)
            gate.set()
            async for chunk in stream:
                chunks.append(chunk)
    assert b"ef" in b"".join(chunks)

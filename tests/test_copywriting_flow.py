"""write_variants end to end: the real gateway client against the fake gateway (a real HTTP
server speaking SSE), scripted with valid, wrapped, broken and schema-ignoring answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.config import Settings
from bot.copywriting.flow import with_instruction, write_variants
from bot.copywriting.styles import STYLES
from bot.gateway.client import GatewayClient
from bot.gateway.errors import GatewayError
from tests.fakes.gateway import Answer, FakeGateway

XHS = STYLES["xiaohongshu"]
SYSTEM = {"role": "system", "content": "You are a copywriter.\n\n" + XHS.system_prompt()}
BRIEF = {"role": "user", "content": "给一款清爽防晒霜写种草文案"}


def variant(i: int, **kw: Any) -> dict[str, Any]:
    v = {
        "title": f"防晒好物第{i}弹🌞",
        "body": f"第{i}个方案：清爽不油腻，通勤党必备☀️",
        "hashtags": ["防晒", "夏日好物", "护肤"],
    }
    v.update(kw)
    return v


def answer_json(*variants: dict[str, Any]) -> str:
    return json.dumps({"variants": list(variants)}, ensure_ascii=False)


@pytest.fixture
async def gw():
    async with FakeGateway() as gateway:
        yield gateway


def settings_for(gw: FakeGateway, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "BYTESPIKE_API_KEY": gw.api_key,
        "BYTESPIKE_BASE_URL": gw.base_url,
        "BOT_RETRY_BASE_DELAY": 0.001,
        "BOT_RETRY_MAX_DELAY": 0.01,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def run(gw: FakeGateway, n: int | None = None, style=XHS, **overrides: object):
    settings = settings_for(gw, **overrides)
    async with GatewayClient(settings) as client:
        return await write_variants(client, [SYSTEM, BRIEF], style, n, settings)


def last_user(body: dict[str, Any]) -> str:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


async def test_valid_json_renders_three_numbered_variants(gw: FakeGateway) -> None:
    gw.script(Answer(text=answer_json(variant(1), variant(2), variant(3)), reasoning="三个角度：通勤、户外、学生"))
    result = await run(gw)
    assert result.ok and len(result.variants) == 3 and result.calls == 1
    for n in (1, 2, 3):
        assert f"**方案 {n}** · **防晒好物第{n}弹🌞**" in result.markdown
    assert "{" not in result.markdown and "三个角度" not in result.markdown
    assert "三个角度" in result.reasoning
    body = gw.requests[0].body
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["variants"]["minItems"] == 3  # default BOT_COPY_VARIANTS
    assert "exactly 3" in last_user(body) and last_user(body).startswith(BRIEF["content"])
    assert body["messages"][0] == SYSTEM  # the cached prefix is untouched


async def test_variant_count_comes_from_settings(gw: FakeGateway) -> None:
    gw.script(Answer(text=answer_json(variant(1), variant(2))))
    result = await run(gw, None, BOT_COPY_VARIANTS=2)
    assert len(result.variants) == 2
    assert gw.requests[0].body["response_format"]["json_schema"]["schema"]["properties"]["variants"]["maxItems"] == 2


async def test_json_wrapped_in_prose_and_fences(gw: FakeGateway) -> None:
    text = f"好的！这是三个方案：\n```json\n{answer_json(variant(1), variant(2), variant(3))}\n```\n需要调整随时说～"
    gw.script(Answer(text=text, reasoning="plan", reasoning_style="inline_no_open", split_tags=True))
    result = await run(gw)
    assert result.ok and result.calls == 1 and len(result.variants) == 3
    assert "好的！" not in result.markdown


async def test_broken_json_is_repaired_without_a_retry(gw: FakeGateway) -> None:
    broken = answer_json(variant(1), variant(2), variant(3))[:-2] + ",]"  # trailing comma, no closing brace
    gw.script(Answer(text=broken))
    result = await run(gw)
    assert result.ok and result.calls == 1 and len(result.variants) == 3


async def test_answer_ignoring_the_schema_is_retried_once(gw: FakeGateway) -> None:
    gw.script(
        Answer(text="当然可以！标题：防晒好物。正文：真的很好用。"),
        Answer(text=answer_json(variant(1), variant(2), variant(3))),
    )
    result = await run(gw)
    assert result.ok and result.calls == 2 and len(result.variants) == 3
    retry = gw.requests[1].body["messages"]
    assert retry[-2] == {"role": "assistant", "content": "当然可以！标题：防晒好物。正文：真的很好用。"}
    assert "no JSON object" in retry[-1]["content"]


async def test_two_unusable_answers_give_a_clear_message_never_raw_text(gw: FakeGateway) -> None:
    gw.script(Answer(text="我觉得这款防晒很好"), Answer(text='{"oops": '))
    result = await run(gw)
    assert not result.ok and result.variants == [] and result.calls == 2
    assert "再试一次" in result.markdown and "oops" not in result.markdown and "{" not in result.markdown


async def test_missing_variants_are_asked_for_again(gw: FakeGateway) -> None:
    gw.script(Answer(text=answer_json(variant(1))), Answer(text=answer_json(variant(1), variant(2), variant(3))))
    result = await run(gw)
    assert result.calls == 2 and len(result.variants) == 3 and result.message == ""


async def test_a_short_answer_after_the_retry_is_used_and_said(gw: FakeGateway) -> None:
    gw.script(Answer(text=answer_json(variant(1), variant(2))), Answer(text="no"))
    result = await run(gw)
    assert result.ok and len(result.variants) == 2
    assert "只得到 2 个可用方案" in result.markdown


async def test_constraint_violation_is_sent_back_and_fixed(gw: FakeGateway) -> None:
    long_title = "这是一个明显超过二十个字限制的小红书标题写得太长了🌞"
    gw.script(
        Answer(text=answer_json(variant(1), variant(2, title=long_title), variant(3))),
        Answer(text=answer_json(variant(9, title="短一点的标题🌞"))),
    )
    result = await run(gw)
    assert result.ok and result.calls == 2 and result.notes == {}
    assert [v.title for v in result.variants] == ["防晒好物第1弹🌞", "短一点的标题🌞", "防晒好物第3弹🌞"]
    fix = gw.requests[1].body
    prompt = fix["messages"][-1]["content"]
    assert "方案 2" in prompt and "the title is" in prompt and "limit is 20" in prompt
    assert "方案 1" not in prompt and "方案 3" not in prompt
    assert fix["response_format"]["json_schema"]["schema"]["properties"]["variants"]["maxItems"] == 1
    assert json.loads(fix["messages"][-2]["content"])["variants"][1]["title"] == long_title
    assert long_title not in result.markdown


async def test_violation_that_survives_the_fix_is_shown_with_a_note(gw: FakeGateway) -> None:
    long_title = "这是一个明显超过二十个字限制的小红书标题写得太长了🌞"
    gw.script(
        Answer(text=answer_json(variant(1), variant(2), variant(3, title=long_title))),
        Answer(text=answer_json(variant(3, title=long_title + "还更长了"))),
    )
    result = await run(gw)
    assert result.ok and result.calls == 2 and set(result.notes) == {3}
    assert long_title + "还更长了" not in result.markdown  # a worse "fix" is not taken
    assert "⚠️" in result.markdown and "limit is 20" in result.markdown


async def test_without_structured_output_the_format_is_asked_in_words(gw: FakeGateway) -> None:
    gw.script(Answer(text=answer_json(variant(1), variant(2), variant(3))))
    result = await run(gw, BOT_STRUCTURED_OUTPUT=False)
    assert result.ok
    body = gw.requests[0].body
    assert "response_format" not in body
    assert '"variants"' in last_user(body)


async def test_cut_off_answer_is_retried(gw: FakeGateway) -> None:
    whole = answer_json(variant(1), variant(2), variant(3))
    gw.script(Answer(text=whole[: len(whole) // 2], finish_reason="length"), Answer(text=whole))
    result = await run(gw)
    assert result.calls == 2 and len(result.variants) == 3
    assert "cut off" in gw.requests[1].body["messages"][-1]["content"]


async def test_gateway_errors_reach_the_caller(gw: FakeGateway) -> None:
    gw.script(*[Answer(status=401)] * 3)
    with pytest.raises(GatewayError):
        await run(gw)


def test_instruction_goes_into_the_last_user_message_without_touching_the_input() -> None:
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
    messages = [SYSTEM, image]
    out = with_instruction(messages, "FORMAT")
    assert out[-1]["content"][-1] == {"type": "text", "text": "FORMAT"}
    assert messages[1]["content"] == [{"type": "image_url", "image_url": {"url": "data:,"}}]
    tail = with_instruction([SYSTEM, {"role": "assistant", "content": "x"}], "FORMAT")
    assert tail[-1] == {"role": "user", "content": "FORMAT"}

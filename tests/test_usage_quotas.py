"""Prices, the per-call ledger and quotas, end to end through the real ChatService, the
real gateway client and the fake gateway server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.config import SettingsError, load_settings
from bot.copywriting.copy_extension import REFINE_PRESS
from bot.platform.controls import Action, Press
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.store.models import GatewayCall, Message, Turn, UsageCounter
from bot.usage.allowance import Allowance, parse_allowance
from bot.usage.periods import Period
from bot.usage.pricing import Prices
from bot.usage.quotas import Scope
from tests.fakes.gateway import Answer, FakeToolCall
from tests.polling import eventually
from tests.surfaces import RecordingSurface

KEY = ConversationKey("telegram", "bot1", "555")
PRICES = {"BOT_PRICE_INPUT": "2", "BOT_PRICE_CACHED_INPUT": "0.5", "BOT_PRICE_OUTPUT": "8"}


def msg(text: str, user: str = "42", key: ConversationKey = KEY) -> IncomingMessage:
    return IncomingMessage(key=key, author=Author(user, f"User {user}"), text=text, message_id=f"m-{text}")


async def table(rt, model, *where):
    async with rt.db.read() as conn:
        return (await conn.execute(select(model).where(*where).order_by(model.id))).all()


@pytest.fixture
async def rt(make_settings, request):
    overrides = getattr(request, "param", {})
    runtime = await build_runtime(make_settings(**PRICES, **overrides), migrate=False)
    yield runtime
    await runtime.close()


def test_cost_prices_cached_tokens_apart() -> None:
    prices = Prices(input=2.0, cached_input=0.5, output=8.0, currency="EUR")
    # 1000 prompt tokens of which 400 cached, 200 completion tokens, per million.
    assert prices.cost(1000, 400, 200) == pytest.approx((600 * 2 + 400 * 0.5 + 200 * 8) / 1e6)
    assert prices.cost(0, 0, 0) == 0
    assert prices.money(0.0031) == "0.0031 EUR" and prices.money(12.5) == "12.50 EUR"


def test_cached_price_defaults_to_the_input_price(make_settings) -> None:
    prices = Prices.from_settings(make_settings(BOT_PRICE_INPUT="3", BOT_PRICE_OUTPUT="15"))
    assert prices.cost(1_000_000, 500_000, 0) == pytest.approx(3.0)


def test_budgets_read_as_an_operator_writes_them() -> None:
    assert parse_allowance("200k tokens") == Allowance(200_000, None)
    assert parse_allowance("2.50 USD, 1_000 tokens") == Allowance(1000, 2.5)
    assert parse_allowance("") == Allowance()
    with pytest.raises(ValueError, match="cannot read budget 'lots'"):
        parse_allowance("lots")


def test_a_bad_quota_setting_is_one_readable_line(monkeypatch) -> None:
    monkeypatch.setenv("BOT_QUOTA_USER_DAILY", "many")
    with pytest.raises(SettingsError) as caught:
        load_settings(require_api_key=False, _env_file=None)
    assert any(line.startswith("BOT_QUOTA_USER_DAILY: cannot read budget 'many'") for line in caught.value.lines)


async def test_each_gateway_call_is_priced_and_added_to_its_turn(rt, fake_gateway) -> None:
    fake_gateway.script(
        Answer(
            text="",
            tool_calls=[FakeToolCall("calculator", {"expression": "6*7"})],
            prompt_tokens=1000,
            cached_tokens=400,
            completion_tokens=50,
        ),
        Answer(text="It is 42.", prompt_tokens=1200, cached_tokens=1000, completion_tokens=20),
    )
    surface = RecordingSurface()
    await rt.service.handle(msg("what is 6*7?"), surface)
    assert surface.texts[-1].startswith("It is 42.")
    calls = await table(rt, GatewayCall)
    assert [(c.prompt_tokens, c.cached_tokens, c.completion_tokens) for c in calls] == [
        (1000, 400, 50),
        (1200, 1000, 20),
    ]
    first = (600 * 2 + 400 * 0.5 + 50 * 8) / 1e6
    second = (200 * 2 + 1000 * 0.5 + 20 * 8) / 1e6
    assert [c.cost for c in calls] == [pytest.approx(first), pytest.approx(second)]
    assert {(c.platform, c.user_id, c.outcome) for c in calls} == {("telegram", "42", "ok")}
    turn = (await table(rt, Turn))[0]
    assert calls[0].turn_id == calls[1].turn_id == turn.id
    assert turn.cost == pytest.approx(first + second)


async def test_copy_rounds_are_each_metered(rt, fake_gateway) -> None:
    await rt.service.handle(msg("/style product-description"), RecordingSurface())
    broken = Answer(text="not json at all", reasoning_style="none", prompt_tokens=500, completion_tokens=10)
    good = Answer(
        text='{"variants": ['
        + ",".join(
            json.dumps({"title": f"Tea {i}", "body": "Fresh osmanthus oolong, hand-rolled and roasted. " * 5})
            for i in range(3)
        )
        + "]}",
        reasoning_style="none",
        prompt_tokens=600,
        completion_tokens=300,
    )
    fake_gateway.script(broken, good)
    await rt.service.handle(msg("osmanthus oolong tea"), RecordingSurface())
    calls = await table(rt, GatewayCall)
    assert [(c.kind, c.prompt_tokens, c.completion_tokens) for c in calls] == [("copy", 500, 10), ("copy", 600, 300)]
    turn = (await table(rt, Turn))[0]
    assert turn.cost == pytest.approx((500 * 2 + 10 * 8 + 600 * 2 + 300 * 8) / 1e6)


async def test_a_refinement_is_metered_as_its_own_turn(rt, fake_gateway) -> None:
    await rt.service.handle(msg("/style product-description"), RecordingSurface())
    variants = (
        '{"variants": ['
        + ",".join(
            json.dumps({"title": f"Tea {i}", "body": "Fresh osmanthus oolong, hand-rolled and roasted. " * 5})
            for i in range(3)
        )
        + "]}"
    )
    fake_gateway.script(Answer(text=variants, reasoning_style="none", prompt_tokens=600, completion_tokens=300))
    surface = RecordingSurface()
    await rt.service.handle(msg("osmanthus oolong tea"), surface)
    # Too short for the style's 200-character floor: the refinement takes a repair round too.
    shorter = '{"variants": [{"title": "Tea", "body": "Osmanthus oolong, hand-rolled."}]}'
    repaired = '{"variants": [{"title": "Tea", "body": "%s"}]}' % ("Osmanthus oolong, hand-rolled. " * 8)
    fake_gateway.script(
        Answer(text=shorter, reasoning_style="none", prompt_tokens=900, cached_tokens=600, completion_tokens=40),
        Answer(text=repaired, reasoning_style="none", prompt_tokens=1000, completion_tokens=80),
    )
    tap = Action(Press(REFINE_PRESS, surface.writes[-1].turn_id, (str(2), "shorter")), Author("42", "User 42"), KEY)
    await rt.service.act(tap, RecordingSurface())
    await rt.service.drain()
    calls = await table(rt, GatewayCall)
    assert [(c.kind, c.prompt_tokens, c.cached_tokens, c.completion_tokens) for c in calls] == [
        ("copy", 600, 0, 300),
        ("refine", 900, 600, 40),
        ("refine", 1000, 0, 80),
    ]
    turns = await table(rt, Turn)
    assert len(turns) == 2 and calls[1].turn_id == calls[2].turn_id == turns[1].id != calls[0].turn_id
    assert turns[1].cost == pytest.approx((300 * 2 + 600 * 0.5 + 40 * 8 + 1000 * 2 + 80 * 8) / 1e6)


async def test_a_failed_call_is_recorded_by_kind(rt, fake_gateway) -> None:
    fake_gateway.script(*[Answer(status=401)] * 3)
    surface = RecordingSurface()
    await rt.service.handle(msg("hello"), surface)
    calls = await table(rt, GatewayCall)
    assert [(c.outcome, c.error_kind, c.cost) for c in calls] == [("error", "auth", 0.0)]


@pytest.mark.parametrize("rt", [{"BOT_QUOTA_USER_DAILY": "1000 tokens"}], indirect=True)
async def test_a_reached_daily_quota_refuses_before_the_model(rt, fake_gateway) -> None:
    fake_gateway.script(Answer(text="first answer", prompt_tokens=900, completion_tokens=200))
    surface = RecordingSurface()
    await rt.service.handle(msg("one"), surface)
    assert surface.texts == ["first answer"]
    await rt.service.handle(msg("two"), surface)
    assert fake_gateway.served == 1  # nothing more reached the model
    refusal = surface.texts[-1]
    assert "You have reached your daily limit of 1,000 tokens" in refusal
    assert "resets at 00:00 UTC" in refusal and "Your message is saved" in refusal
    # The refusal is meant for its asker alone (an ephemeral message in a group, where the platform has them);
    # the answer before it was for everyone.
    assert [w.audience for w in surface.writes] == [""] * (len(surface.writes) - 1) + ["42"]
    stored = await table(rt, Message, Message.role == "user")
    assert [(m.status) for m in stored] == ["answered", "refused"]
    # Someone else in the same place still gets answers: the limit is per user.
    fake_gateway.script(Answer(text="answer for bob", prompt_tokens=10, completion_tokens=5))
    other = RecordingSurface()
    await rt.service.handle(msg("three", user="77", key=ConversationKey("telegram", "bot1", "777")), other)
    assert other.texts == ["answer for bob"]


@pytest.mark.parametrize("rt", [{"BOT_QUOTA_GLOBAL_MONTHLY": "0.001 USD", "BOT_ADMINS": "telegram:1"}], indirect=True)
async def test_global_budget_spares_admins(rt, fake_gateway) -> None:
    fake_gateway.script(Answer(text="costly", prompt_tokens=1000, completion_tokens=1000))  # 0.01 USD
    await rt.service.handle(msg("spend"), RecordingSurface())
    refused = RecordingSurface()
    await rt.service.handle(msg("more", user="43"), refused)
    assert "The assistant has reached its monthly budget for everyone of 0.0010 USD" in refused.texts[0]
    assert "resets on 1 " in refused.texts[0]
    admin = RecordingSurface()
    fake_gateway.script(Answer(text="for the admin"))
    await rt.service.handle(msg("admin asks", user="1"), admin)
    assert admin.texts == ["for the admin"]


async def test_limits_set_at_runtime_and_lifted(rt, fake_gateway) -> None:
    quotas = rt.service.ops.quotas
    fake_gateway.script(Answer(text="a1", prompt_tokens=100, completion_tokens=100))
    await rt.service.handle(msg("q1"), RecordingSurface())
    conv_id = (await table(rt, Turn))[0].conversation_id
    await quotas.set_limit(Scope.CONVERSATION, str(conv_id), Period.DAY, Allowance(tokens=150), by="test")
    surface = RecordingSurface()
    await rt.service.handle(msg("q2"), surface)
    assert "This conversation has reached its daily limit of 150 tokens" in surface.texts[-1]
    await quotas.set_limit(Scope.CONVERSATION, str(conv_id), Period.DAY, Allowance(), by="test")  # lifted
    fake_gateway.script(Answer(text="a3"))
    await rt.service.handle(msg("q3"), surface)
    assert surface.texts[-1] == "a3"
    # A runtime default for every user beats the configuration; a user's own row beats both.
    await quotas.set_limit(Scope.USER, "*", Period.MONTH, Allowance(tokens=10), by="test")
    await rt.service.handle(msg("q4"), surface)
    assert "your monthly limit of 10 tokens" in surface.texts[-1]
    await quotas.set_limit(Scope.USER, "telegram:42", Period.MONTH, Allowance(tokens=10**9), by="test")
    fake_gateway.script(Answer(text="a5"))
    await rt.service.handle(msg("q5"), surface)
    assert surface.texts[-1] == "a5"


async def test_when_day_and_month_are_both_spent_the_later_reset_is_named(rt) -> None:
    quotas = rt.service.ops.quotas
    now = datetime(2026, 12, 30, 15, 0, tzinfo=UTC)
    for period in Period:
        await quotas.set_limit(Scope.USER, "telegram:9", period, Allowance(tokens=0), by="test")
    refusal = await quotas.check(None, "telegram", "9", now=now)
    assert refusal is not None and refusal.period is Period.MONTH
    assert "It resets on 1 January at 00:00 UTC (in 33 h 0 min)." in refusal.text


async def test_usage_command_reports_own_and_conversation_usage(rt, fake_gateway) -> None:
    fake_gateway.script(Answer(text="hi", prompt_tokens=1000, cached_tokens=500, completion_tokens=100))
    await rt.service.handle(msg("hello"), RecordingSurface())
    surface = RecordingSurface()
    await rt.service.handle(msg("/usage"), surface)
    text = surface.texts[-1]
    assert "Today: 1,100 tokens · 0.0021 USD" in text  # (500*2 + 500*0.5 + 100*8) / 1e6
    assert "1 answer(s), 1,000 prompt tokens (50% from the prompt cache), 100 completion tokens" in text
    await rt.service.handle(msg("/usage all"), surface)
    assert surface.texts[-1].startswith("Only admins can see everyone's usage")
    assert "Top users" not in surface.texts[-1]


@pytest.mark.parametrize("rt", [{"BOT_ADMINS": "telegram:1"}], indirect=True)
async def test_usage_all_for_admins_lists_top_users(rt, fake_gateway) -> None:
    fake_gateway.script(
        Answer(text="x", prompt_tokens=3000, completion_tokens=0),
        Answer(text="y", prompt_tokens=1000, completion_tokens=0),
    )
    await rt.service.handle(msg("a", user="42"), RecordingSurface())
    await rt.service.handle(msg("b", user="43", key=ConversationKey("telegram", "bot1", "43")), RecordingSurface())
    surface = RecordingSurface()
    await rt.service.handle(msg("/usage all", user="1"), surface)
    text = surface.texts[-1]
    assert "**Everyone**" in text and "no limits apply to you" in text
    assert text.index("1. telegram:42 — 3,000 tokens") < text.index("2. telegram:43 — 1,000 tokens")


async def test_counters_match_the_ledger(rt, fake_gateway) -> None:
    fake_gateway.script(
        Answer(text="1", prompt_tokens=10, completion_tokens=5), Answer(text="2", prompt_tokens=20, completion_tokens=5)
    )
    await rt.service.handle(msg("a"), RecordingSurface())
    await rt.service.handle(msg("b"), RecordingSurface())
    counters = {(c.scope, c.period): (c.tokens, c.calls) for c in await table(rt, UsageCounter)}
    assert counters[("user", "day")] == counters[("global", "month")] == (40, 2)


async def test_a_stopped_answer_is_recorded_as_cancelled(rt, fake_gateway) -> None:
    import asyncio

    fake_gateway.script(Answer(text="x" * 2000, chunk_size=10, chunk_delay=0.01, reasoning="long one"))
    surface = RecordingSurface()
    task = asyncio.create_task(rt.service.handle(msg("long please"), surface))
    await eventually(lambda: surface.order)
    assert await rt.service.stop(surface.writes[0].turn_id)
    await task
    assert surface.texts[-1].endswith("_(stopped)_")
    calls = await table(rt, GatewayCall)
    assert [(c.outcome, c.prompt_tokens, c.ttft_ms is not None) for c in calls] == [("cancelled", 0, True)]

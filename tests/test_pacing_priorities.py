"""Answer text first, against the fake platforms with their limits on: cosmetic calls
(typing, status) never hold back an answer's text, a 429 on one is not retried, and a
method whose limit nobody documents is found out with at most one 429 per Retry-After."""

from __future__ import annotations

import asyncio

from adapters.slack import controls
from bot.process.runtime import build_runtime
from tests.fakes.gateway import Answer, last_user_text
from tests.fakes.slack_api import BOT_USER_ID, FakeSlack
from tests.fakes.telegram_api import FakeLimits, FakeTelegram
from tests.platforms import connect
from tests.slack_harness import CHANNEL, THOUGHT, _close, _harness
from tests.telegram_harness import ALICE, THINK, answered, no_limit_broken

STATUS = "assistant.threads.setStatus"


async def test_an_undocumented_status_limit_costs_one_429_per_retry_after_and_no_answer_waits(
    make_settings, fake_gateway
):
    window = 6.0  # a tenth of Slack's minute
    fake = await FakeSlack(window=window, post_interval=window / 60).start()
    fake.tier_limits[STATUS] = 4  # Slack documents no number for it; this workspace allows 4
    slack = await _harness(make_settings, fake_gateway, fake)
    fake_gateway.default = lambda body: Answer(
        text=f"answer to {last_user_text(body).split()[-1]}", reasoning=THOUGHT, chunk_size=4, chunk_delay=0.01
    )
    try:
        envs = [fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> q{i}", mention=True) for i in range(16)]
        await asyncio.gather(*(slack.send(env) for _, env in envs))
        await slack.settle(timeout=120)
        for i, (ts, _) in enumerate(envs):
            [reply] = fake.bot_replies(CHANNEL, ts)
            assert reply.text == f"answer to q{i}" and controls.REGENERATE in reply.button_ids
        refused = [c for c in fake.rate_limited]
        assert {c.method for c in refused} <= {STATUS}, "no 429 on a documented method"
        assert refused, "the hidden limit was reached (else this test proves nothing)"
        statuses = fake.calls_to(STATUS)
        sent = [(c.args.get("thread_ts"), c.args.get("status")) for c in statuses]
        assert len(sent) == len(set(sent)), "a status that met a 429 is not sent again"
        for c in refused:
            pause = 1.0  # the fake's Retry-After (whole seconds, at least 1)
            # Calls already on their way when the 429 was answered may still arrive just after it.
            in_flight = 0.1
            during = [s for s in statuses if c.at + in_flight < s.at < c.at + pause * 0.95]
            assert during == [], "a 429 pauses setStatus for the workspace: nothing sent, nothing retried"
    finally:
        await _close(slack)
        await fake.close()


async def test_typing_never_delays_the_first_draft_of_answer_text(make_settings, fake_gateway):
    """Drafts and chat actions share one budget per chat: the typing action sent while the
    model reasons must not make the first draft with answer text wait for a slot. Telegram's
    real windows (no time scale): the old shared budget spaced the two 0.8 s apart."""
    async with FakeTelegram(limits=FakeLimits()) as tg:
        tg.add_chat(ALICE["id"], "private", user=ALICE)
        runtime = await build_runtime(make_settings(), migrate=False)
        adapter = connect(
            runtime, "telegram", TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.api_url, TELEGRAM_POLL_TIMEOUT=1
        )
        await adapter.start()
        try:
            fake_gateway.script(
                Answer(text="Hello there, a quick answer.", reasoning=THINK * 2, chunk_size=12, chunk_delay=0.02)
            )
            tg.send_user_message(ALICE["id"], ALICE, "hi")
            await answered(tg, ALICE["id"])
        finally:
            await adapter.stop()
            await runtime.close()
        typing = tg.calls_to("sendChatAction", ALICE["id"])
        drafts = [c for c in tg.calls_to("sendMessageDraft", ALICE["id"]) if c.params.get("text")]
        assert typing and drafts and typing[0].at < drafts[0].at
        no_limit_broken(tg)
        assert drafts[0].at - typing[0].at < adapter.budgets.pacing.draft / 2

"""The service benchmark's floors: what the platforms' documented limits allow, computed."""

from __future__ import annotations

import math

import pytest

from bench.floors import (
    TG_BOT,
    Limit,
    floor_p50_p99,
    percentile,
    slack_first_writes,
    telegram_first_writes,
)


def test_a_sliding_window_lets_count_calls_go_at_once_then_one_window_later() -> None:
    assert [Limit(3, 2.0).slot(k) for k in range(7)] == [0, 0, 0, 2.0, 2.0, 2.0, 4.0]


def test_one_telegram_chat_has_no_floor() -> None:
    assert telegram_first_writes(1) == [0.0]
    assert floor_p50_p99(telegram_first_writes(10)) == (0.0, 0.0)  # ten groups: within 30/s


def test_100_private_chats_through_telegram_s_30_per_second() -> None:
    floors = telegram_first_writes(100)
    assert floors[:30] == [0.0] * 30 and floors[30] == 1.0 and floors[-1] == 3.0
    assert floor_p50_p99(floors) == (1.0, 3.0)
    assert floor_p50_p99(telegram_first_writes(100, bot=Limit(28, 1.0))) == (1.0, 3.0)
    assert TG_BOT == Limit(30, 1.0)


def test_one_slack_thread_has_no_floor_either_way() -> None:
    assert slack_first_writes([1]) == [0.0]
    assert slack_first_writes([1], streams=False) == [0.0]
    assert slack_first_writes([1], posts=False) == [0.0]


def test_50_slack_threads_in_one_channel() -> None:
    # Posts only: one a second in the channel.
    posts = slack_first_writes([50], streams=False)
    assert sorted(posts) == [float(k) for k in range(50)]
    # Streams only: 20 a minute for the workspace.
    streams = slack_first_writes([50], posts=False)
    assert sorted(streams) == [0.0] * 20 + [60.0] * 20 + [120.0] * 10
    # Both: 20 streams and a post at once, then one post a second.
    both = sorted(slack_first_writes([50]))
    assert both == [0.0] * 21 + [float(k) for k in range(1, 30)]
    assert floor_p50_p99(both) == (4.0, 29.0)


def test_50_slack_threads_over_five_channels() -> None:
    both = sorted(slack_first_writes([10] * 5))
    assert len(both) == 50
    # At 0: five posts and twenty streams; then five posts a second.
    assert both[:25] == [0.0] * 25 and both[25:30] == [1.0] * 5 and both[-1] == 5.0
    assert floor_p50_p99(both) == (0.0, 5.0)  # the 25th of 50 still goes at once
    assert max(slack_first_writes([10] * 5, streams=False)) == 9.0


def test_every_thread_gets_exactly_one_floor() -> None:
    for layout in ([3, 0, 7], [100], [1] * 60, [25, 25]):
        for streams, posts in ((True, True), (True, False), (False, True)):
            assert len(slack_first_writes(layout, streams=streams, posts=posts)) == sum(layout)
    with pytest.raises(ValueError):
        slack_first_writes([1], streams=False, posts=False)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(range(100)), 99) == 98
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))


async def test_the_fake_gateway_reports_when_the_first_visible_text_went_out() -> None:
    import httpx

    from tests.fakes.gateway import Answer, FakeGateway

    seen: list[tuple[str, str, float]] = []
    async with FakeGateway() as gw:
        gw.on_timing = lambda body, event, at: seen.append((body["messages"][-1]["content"], event, at))
        gw.script(Answer(text="visible words", reasoning="hidden", chunk_size=4, chunk_delay=0.01))
        request = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "tag1"}]}
        async with (
            httpx.AsyncClient() as client,
            client.stream(
                "POST", gw.base_url + "/v1/chat/completions", headers={"Authorization": "Bearer test-key"}, json=request
            ) as response,
        ):
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert b"ords" in body
    assert [(text, event) for text, event, _ in seen] == [("tag1", "visible"), ("tag1", "done")]
    # "<think>hidden</think>\n\n" is 23 characters: six 4-character chunks, the sixth partly visible.
    assert seen[1][2] - seen[0][2] >= 0.01 * (len("visible words") // 4 - 1)


def test_staggered_arrivals_under_the_bot_wide_limit() -> None:
    from bench.floors import staggered_first_writes

    # All due at once: the same as telegram_first_writes.
    assert staggered_first_writes([0.0] * 100) == telegram_first_writes(100)
    # Four a second never meets 30 a second.
    assert set(staggered_first_writes([k / 4 for k in range(80)])) == {0.0}
    # 40 a second for one second: the 31st waits until the first's window has passed.
    floors = staggered_first_writes([k / 40 for k in range(40)])
    assert floors[:30] == [0.0] * 30
    assert floors[30] == pytest.approx(1.0 - 30 / 40)


def test_slack_floor_counts_the_startstreams_a_warm_up_already_spent():
    assert slack_first_writes([1], posts=False, streams_used=20) == [60.0]
    fresh, warmed = sorted(slack_first_writes([10] * 5)), sorted(slack_first_writes([10] * 5, streams_used=1))
    assert fresh.count(0.0) == 25 and warmed.count(0.0) == 24  # 20 (or 19) starts + 5 posts at once
    assert warmed[24] == 1.0


def test_a_token_bucket_lets_its_burst_go_at_once_then_one_per_refill():
    from bench.floors import SLACK_START_STREAM_BURSTY, Bucket

    assert [Bucket(20, 60.0, 3).slot(k) for k in range(6)] == [0.0, 0.0, 0.0, 3.0, 6.0, 9.0]
    assert SLACK_START_STREAM_BURSTY == Bucket(20, 60.0, 3)


def test_50_slack_threads_against_a_slack_with_small_bursts():
    from bench.floors import SLACK_START_STREAM_BURSTY

    bursty = sorted(slack_first_writes([10] * 5, start_stream=SLACK_START_STREAM_BURSTY))
    assert len(bursty) == 50
    # At 0: three starts and five posts; then five posts a second and a start every 3 s.
    assert bursty[:8] == [0.0] * 8 and bursty[8:13] == [1.0] * 5
    assert floor_p50_p99(bursty) == (4.0, 8.0)  # against (0.0, 5.0) for whole-minute bursts
    # One channel: posts carry most threads.
    assert floor_p50_p99(slack_first_writes([50], start_stream=SLACK_START_STREAM_BURSTY)) == (16.0, 35.0)

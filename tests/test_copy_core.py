"""Copywriting through the core: styles shared by a group, variants, refinement, tools."""

from __future__ import annotations

import asyncio
import json

from bot.copywriting.copy_extension import REFINE_PRESS
from bot.core.service import ChatService
from bot.platform.controls import Action, Press
from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage
from bot.tools import Tool, ToolRegistry
from tests.fakes.gateway import Answer, FakeToolCall
from tests.surfaces import RecordingSurface, variants_of

GROUP = ConversationKey("telegram", "bot", "-1001", "")


def say(text: str, author: str, **kw) -> IncomingMessage:
    return IncomingMessage(
        key=GROUP, author=Author(author, author.title()), text=text, group=True, message_id=text[:8], **kw
    )


def xhs(title: str, n: int = 3) -> str:
    variants = [
        {
            "title": f"{title}{i}",
            "body": f"第{i}版：桂花乌龙真的香🌼，冷泡热泡都好喝。",
            "hashtags": ["桂花乌龙", "好茶推荐", "下午茶"],
        }
        for i in range(1, n + 1)
    ]
    return json.dumps({"variants": variants}, ensure_ascii=False)


async def test_style_set_by_one_member_is_used_for_another(service, fake_gateway) -> None:
    surface = RecordingSurface()
    await service.handle(say("/style xiaohongshu", "alice"), surface)
    assert "小红书" in surface.texts[-1] or "Xiaohongshu" in surface.texts[-1]
    fake_gateway.script(Answer(text=xhs("秋天的第一杯"), reasoning="写三版"))
    bob = RecordingSurface()
    await service.handle(say("帮我们写桂花乌龙的种草笔记", "bob"), bob)
    request = fake_gateway.requests[-1].body
    assert "小红书" in request["messages"][0]["content"]  # the style is in the stable system prompt
    assert "response_format" in request
    shown = bob.texts[-1]
    assert "秋天的第一杯1" in shown and "秋天的第一杯3" in shown
    assert '{"variants"' not in shown and "写三版" not in shown
    assert variants_of(bob.writes[-1]) == 3


async def test_switching_style_keeps_the_history_prefix(service, fake_gateway) -> None:
    await service.handle(say("hello", "alice"), RecordingSurface())
    first = fake_gateway.requests[-1].body["messages"]
    await service.handle(say("/style weibo", "alice"), RecordingSurface())
    fake_gateway.script(
        Answer(
            text=json.dumps(
                {"variants": [{"body": f"第{i}条微博", "hashtags": ["茶"]} for i in range(3)]}, ensure_ascii=False
            )
        )
    )
    await service.handle(say("写条微博", "alice"), RecordingSurface())
    second = fake_gateway.requests[-1].body["messages"]
    assert second[1] == first[1]  # history after the system prompt is unchanged
    assert second[0] != first[0]  # only the stable system prompt changed


async def test_refinement_button_rewrites_the_chosen_variant(service, fake_gateway) -> None:
    await service.handle(say("/style xiaohongshu", "alice"), RecordingSurface())
    fake_gateway.script(Answer(text=xhs("好喝到哭")))
    surface = RecordingSurface()
    await service.handle(say("写桂花乌龙", "alice"), surface)
    turn_id = surface.writes[-1].turn_id
    fake_gateway.script(Answer(text=xhs("短版", 1)))
    refined = RecordingSurface()
    tap = Action(Press(REFINE_PRESS, turn_id, (str(2), "shorter")), Author("alice", "Alice"), GROUP)
    assert (await service.act(tap, refined)).text == "On it…"
    await service.drain()
    prompt = json.dumps(fake_gateway.requests[-1].body["messages"], ensure_ascii=False)
    assert "好喝到哭2" in prompt  # the chosen variant is in context
    assert "短版1" in refined.texts[-1]
    assert variants_of(refined.writes[-1]) == 1


async def test_broken_json_is_repaired_and_prose_is_extracted(service, fake_gateway) -> None:
    await service.handle(say("/style xiaohongshu", "alice"), RecordingSurface())
    broken = xhs("修好了")[:-3]  # cut before the closing brackets
    fake_gateway.script(Answer(text="好的，这是三版：\n```json\n" + broken + "\n```"))
    surface = RecordingSurface()
    await service.handle(say("写", "alice"), surface)
    assert "修好了1" in surface.texts[-1] and "```" not in surface.texts[-1]


async def test_answer_ignoring_the_schema_is_retried_once_then_explained(service, fake_gateway) -> None:
    await service.handle(say("/style xiaohongshu", "alice"), RecordingSurface())
    fake_gateway.script(Answer(text="我觉得桂花乌龙很好喝。"), Answer(text="还是不想用 JSON。"))
    surface = RecordingSurface()
    await service.handle(say("写", "alice"), surface)
    assert len(fake_gateway.requests) == 2
    shown = surface.texts[-1]
    assert "{" not in shown and shown.strip()


async def test_constraint_violation_goes_back_to_the_model(service, fake_gateway) -> None:
    await service.handle(say("/style xiaohongshu", "alice"), RecordingSurface())
    too_long = json.loads(xhs("标题"))
    too_long["variants"][0]["title"] = "这是一个远远超过二十个字的小红书标题真的太长了不行的"
    fake_gateway.script(
        Answer(text=json.dumps(too_long, ensure_ascii=False)),
        Answer(
            text=json.dumps(
                {"variants": [{"title": "改短的标题", "body": "正文🌼", "hashtags": ["a", "b", "c"]}]},
                ensure_ascii=False,
            )
        ),
    )
    surface = RecordingSurface()
    await service.handle(say("写", "alice"), surface)
    assert len(fake_gateway.requests) == 2
    fix_prompt = json.dumps(fake_gateway.requests[1].body["messages"], ensure_ascii=False)
    assert "20" in fix_prompt
    assert "改短的标题" in surface.texts[-1] and "太长了不行的" not in surface.texts[-1]


async def test_parallel_tool_calls_run_and_results_return_in_order(service, fake_gateway) -> None:
    fake_gateway.script(
        Answer(
            text="",
            reasoning="need numbers",
            interleave_tool_calls=True,
            tool_calls=[
                FakeToolCall("calculator", {"expression": "12*7"}, id="c1"),
                FakeToolCall("text_stats", {"text": "秋天的第一杯奶茶 #奶茶"}, id="c2"),
            ],
        ),
        Answer(text="12×7 = 84, and the text has 9 characters.", reasoning="done"),
    )
    surface = RecordingSurface()
    await service.handle(
        IncomingMessage(
            key=ConversationKey("console", "local", "t"), author=Author("t", "T"), text="compute and count"
        ),
        surface,
    )
    second = fake_gateway.requests[1].body["messages"]
    tool_msgs = [m for m in second if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["c1", "c2"]
    assert "84" in tool_msgs[0]["content"]
    calls_msg = next(m for m in second if m.get("tool_calls"))
    assert calls_msg["content"].startswith("<think>need numbers</think>")  # kept unchanged
    assert surface.texts[-1].startswith("12×7 = 84")
    # The status line named both tools while they ran (the surface draws no steps itself).
    shown = surface.statuses
    assert any(s.startswith("🔧 calculator ") and "text statistics" in s for s in shown), shown
    assert surface.statuses[-1] == ""


async def test_tool_timeout_is_returned_to_the_model(runtime, make_settings, fake_gateway) -> None:
    started = asyncio.Event()

    async def slow(**_: object) -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    tools = ToolRegistry([Tool("slow_lookup", "takes forever", {"type": "object", "properties": {}}, slow)])
    service = ChatService(make_settings(BOT_TOOL_TIMEOUT=0.2), runtime.store, runtime.gateway, tools=tools)
    fake_gateway.script(
        Answer(text="", reasoning="look it up", tool_calls=[FakeToolCall("slow_lookup", {}, id="s1")]),
        Answer(text="The lookup timed out, sorry.", reasoning="ok"),
    )
    surface = RecordingSurface()
    await service.handle(
        IncomingMessage(key=ConversationKey("console", "local", "t"), author=Author("t", "T"), text="look up"), surface
    )
    tool_msg = next(m for m in fake_gateway.requests[1].body["messages"] if m["role"] == "tool")
    assert "did not finish within 0.2 seconds" in tool_msg["content"]
    assert surface.texts[-1] == "The lookup timed out, sorry."


async def test_product_photo_and_brief_reach_the_model_as_an_image(service, fake_gateway) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buf, "PNG")
    await service.handle(say("/style xiaohongshu", "alice"), RecordingSurface())
    fake_gateway.script(Answer(text=xhs("这杯茶")))
    surface = RecordingSurface()
    photo = Attachment(buf.getvalue(), "image/png", "tea.png")
    await service.handle(say("写一篇种草文案", "alice", attachments=[photo]), surface)
    content = fake_gateway.requests[-1].body["messages"][-1]["content"]
    assert any(
        b.get("type") == "image_url" and b["image_url"]["url"].startswith("data:image/png;base64,") for b in content
    )
    assert "这杯茶1" in surface.texts[-1]


async def test_console_refine_command_uses_the_latest_variants(service, fake_gateway) -> None:
    key = ConversationKey("console", "local", "writer")

    def line(text: str) -> IncomingMessage:
        return IncomingMessage(key=key, author=Author("w", "W"), text=text)

    await service.handle(line("/style linkedin"), RecordingSurface())
    fake_gateway.script(
        Answer(
            text=json.dumps(
                {
                    "variants": [
                        {
                            "body": f"Post number {i} about our launch. #launch #saas #b2b",
                            "hashtags": ["launch", "saas", "b2b"],
                        }
                        for i in range(1, 4)
                    ]
                }
            )
        )
    )
    await service.handle(line("announce our launch"), RecordingSurface())
    fake_gateway.script(
        Answer(
            text=json.dumps(
                {"variants": [{"body": "A formal post. #launch #saas #b2b", "hashtags": ["launch", "saas", "b2b"]}]}
            )
        )
    )
    surface = RecordingSurface()
    await service.handle(line("/refine 3 formal"), surface)
    assert "Post number 3" in json.dumps(fake_gateway.requests[-1].body["messages"])
    assert "A formal post." in surface.texts[-1]
    bad = RecordingSurface()
    await service.handle(line("/refine 9 sideways"), bad)
    assert "Use `/refine" in bad.texts[-1]


async def test_refinement_in_a_group_keeps_the_senders_names(service, fake_gateway) -> None:
    await service.handle(say("/style xiaohongshu", "alice"), RecordingSurface())
    fake_gateway.script(Answer(text=xhs("名字")))
    surface = RecordingSurface()
    await service.handle(say("写桂花乌龙", "bob"), surface)
    fake_gateway.script(Answer(text=xhs("更正式", 1)))
    tap = Press(REFINE_PRESS, surface.writes[-1].turn_id, (str(1), "formal"))
    await service.act(Action(tap, Author("carol", "Carol"), GROUP), RecordingSurface())
    await service.drain()
    users = [m for m in fake_gateway.requests[-1].body["messages"] if m["role"] == "user"]
    assert users[0]["content"].startswith("[Bob] 写桂花乌龙")
    assert "[Carol]" in json.dumps(users[-1], ensure_ascii=False)  # who asked for the refinement


async def test_copy_without_a_style_still_writes_variants(service, fake_gateway) -> None:
    fake_gateway.script(Answer(text=json.dumps({"variants": [{"body": f"Launch copy {i}"} for i in range(1, 4)]})))
    surface = RecordingSurface()
    key = ConversationKey("console", "local", "nostyle")
    await service.handle(
        IncomingMessage(key=key, author=Author("u", "U"), text="/copy a launch post for our app"), surface
    )
    assert "response_format" in fake_gateway.requests[-1].body
    assert "Launch copy 3" in surface.texts[-1] and "{" not in surface.texts[-1]
    assert variants_of(surface.writes[-1]) == 3


async def test_copy_brief_on_the_next_line_is_a_command_with_its_whole_brief(service, fake_gateway) -> None:
    fake_gateway.script(Answer(text=json.dumps({"variants": [{"body": f"Tea copy {i}"} for i in range(1, 4)]})))
    surface = RecordingSurface()
    key = ConversationKey("console", "local", "newline")
    await service.handle(IncomingMessage(key=key, author=Author("u", "U"), text="/copy\nwrite a tea post"), surface)
    assert "write a tea post" in json.dumps(fake_gateway.requests[-1].body["messages"])
    assert variants_of(surface.writes[-1]) == 3

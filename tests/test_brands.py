"""Brand profiles and compliance through the core (issue 18): the real ChatService, store and
copywriting against the fake gateway; what the chat shows is recorded by ``RecordingSurface``.

- ``/brand set`` is a turn that drafts; Save stores exactly the drafted profile, also from
  another process after a restart; a Save after someone changed the profile is refused.
- The profile sits in the stable system prompt: the same bytes on every copy and refinement.
- Every variant is checked; one repair round rewrites only the flagged phrases; what stays bad
  is marked, never shown as clean; "fix compliance" is offered on flagged variants only.
"""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select

from bot.brands.brand_extension import BRAND_PRESS, SAVE
from bot.brands.profile import apply_edit, prompt_section
from bot.brands.profile_draft import SYSTEM
from bot.compliance.brand import BrandError, BrandProfile, Money, Product, Spec
from bot.copywriting.copy_extension import COPY_PART, REFINE_PRESS
from bot.copywriting.refine import ACTIONS, COMPLY
from bot.core.turns import TurnState
from bot.platform.controls import Action, Button, Choice, Press
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.store.brands import BrandStore, Place, StaleBrand
from bot.store.models import BrandRecord
from tests.fakes.gateway import Answer, last_user_text
from tests.surfaces import RecordingSurface

GROUP = ConversationKey("telegram", "bot", "-1001", "")
TOPIC = ConversationKey("telegram", "bot", "-1001", "7")  # another topic of the same group
OTHER = ConversationKey("telegram", "bot", "-2002", "")
ALICE, BOB = Author("alice", "Alice"), Author("bob", "Bob")

DRAFTED = {
    "name": "山茶集",
    "audience": "25–35 岁的都市女性",
    "tone": "温和、真诚",
    "words_to_use": ["温和", "植萃"],
    "words_never": ["便宜货", "平替"],
    "products": [
        {
            "name": "山茶花精华",
            "aliases": ["精华液"],
            "selling_points": ["山茶花提取物", "温和不刺激"],
            "price": "129元",
            "specs": [{"name": "容量", "value": "30ml"}],
        }
    ],
}
PROFILE = BrandProfile(
    "山茶集",
    (
        Product(
            "山茶花精华",
            ("山茶花提取物", "温和不刺激"),
            Money(Decimal("129")),
            (Spec("容量", Decimal("30"), "ml"),),
            ("精华液",),
        ),
    ),
    "25–35 岁的都市女性",
    "温和、真诚",
    ("温和", "植萃"),
    ("便宜货", "平替"),
)


def say(text: str, author: Author = ALICE, key: ConversationKey = GROUP, **kw) -> IncomingMessage:
    return IncomingMessage(key=key, author=author, text=text, group=True, message_id=text[:12], **kw)


def variants(*bodies: str) -> str:
    return json.dumps(
        {
            "variants": [
                {"title": f"山茶花精华{i}", "body": body, "hashtags": ["山茶花", "护肤", "精华"]}
                for i, body in enumerate(bodies, 1)
            ]
        },
        ensure_ascii=False,
    )


def buttons(surface: RecordingSurface) -> list[Button]:
    return [b for row in surface.writes[-1].controls for b in (row.options if isinstance(row, Choice) else row)]


# --- /brand set → Save → the stored row ----------------------------------------------------------------


async def test_brand_set_drafts_a_profile_and_save_stores_exactly_it(runtime, settings, fake_gateway) -> None:
    service, brands = runtime.service, BrandStore(runtime.db)
    fake_gateway.script(Answer(text=json.dumps(DRAFTED, ensure_ascii=False), reasoning="整理品牌资料"))
    surface = RecordingSurface()
    brief = "/brand set 我们是山茶集，主打山茶花精华（大家也叫它精华液），30ml 卖129元，面向25–35岁的都市女性"
    await service.handle(say(brief), surface)

    body = fake_gateway.last.body
    assert body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert "我们是山茶集，主打山茶花精华" in last_user_text(body)
    assert body["response_format"]["json_schema"]["name"] == "brand_profile"  # structured output asked for
    draft = surface.texts[-1]
    assert "**品牌资料草稿 · 山茶集**" in draft and "**山茶花精华**（别名：精华液） · ¥129 · 容量 30ml" in draft
    assert "禁用词：便宜货、平替" in draft and '"name"' not in draft and "整理品牌资料" not in draft
    [save] = [b for b in buttons(surface) if b.press.kind == BRAND_PRESS]
    turn_id = surface.writes[-1].turn_id
    assert save.label == "✅ 保存" and save.press == Press(BRAND_PRESS, turn_id, (SAVE,))
    assert len(save.press.encode().encode()) <= 64
    assert await brands.get(GROUP) is None, "nothing is stored before Save"

    # Save is tapped later, by someone else, on a process started afresh on the same database.
    await runtime.close()
    later = await build_runtime(settings, migrate=False)
    try:
        ack = await later.service.act(Action(save.press, BOB, GROUP), surface)
        assert ack.text == "Saved ✓"
        assert "✅ 已保存（Bob）：**山茶集** 是本聊天的品牌资料" in surface.texts[-1]
        async with later.db.read() as conn:
            row = (await conn.execute(select(BrandRecord.__table__))).one()
        assert (row.platform, row.workspace, row.chat, row.name, row.revision, row.updated_by) == (
            "telegram",
            "bot",
            "-1001",
            "山茶集",
            1,
            "telegram:bob",
        )
        assert row.profile == {
            "name": "山茶集",
            "audience": "25–35 岁的都市女性",
            "tone": "温和、真诚",
            "words_to_use": ["温和", "植萃"],
            "words_never": ["便宜货", "平替"],
            "products": [
                {
                    "name": "山茶花精华",
                    "aliases": ["精华液"],
                    "selling_points": ["山茶花提取物", "温和不刺激"],
                    "price": {"amount": "129", "currency": "CNY"},
                    "specs": {"容量": {"value": "30", "unit": "ml"}},
                }
            ],
        }
        assert (await BrandStore(later.db).get(TOPIC)).profile == PROFILE, "every topic of the chat shares it"
        again = await later.service.act(Action(save.press, ALICE, GROUP), surface)
        assert again.text == "Already saved ✓"
    finally:
        await later.close()


async def test_an_unusable_draft_is_retried_once_then_explained_without_a_save_control(service, fake_gateway) -> None:
    fake_gateway.script(
        Answer(
            text=json.dumps(
                {**DRAFTED, "products": [{"name": "山茶花精华", "price": "very cheap"}]}, ensure_ascii=False
            )
        ),
        Answer(text=json.dumps(DRAFTED, ensure_ascii=False)),
    )
    surface = RecordingSurface()
    await service.handle(say("/brand set 山茶集……"), surface)
    retry = last_user_text(fake_gateway.last.body)
    assert "products[0].price: 'very cheap' is not a price" in retry
    assert "品牌资料草稿 · 山茶集" in surface.texts[-1]

    fake_gateway.script(Answer(text="好的！"), Answer(text='{"audience": "everyone"}'))
    failed = RecordingSurface()
    await service.handle(say("/brand set 随便写点", BOB), failed)
    assert "没能从这段话整理出品牌资料" in failed.texts[-1] and "a brand profile needs a name" in failed.texts[-1]
    assert not [b for b in buttons(failed) if b.press.kind == BRAND_PRESS]
    assert await BrandStore(service.store.db).get(GROUP) is None


async def test_a_draft_is_not_saved_over_a_profile_changed_after_it(service, fake_gateway) -> None:
    brands = BrandStore(service.store.db)
    await brands.save(GROUP, PROFILE, by="telegram:alice")
    fake_gateway.script(Answer(text=json.dumps({**DRAFTED, "tone": "活泼"}, ensure_ascii=False)))
    surface = RecordingSurface()
    await service.handle(say("/brand set 山茶集，语气活泼"), surface)
    assert "替换现有资料" in surface.texts[-1]
    [save] = [b for b in buttons(surface) if b.press.kind == BRAND_PRESS]
    await service.handle(say("/brand edit tone: 专业、克制", BOB), RecordingSurface())
    ack = await service.act(Action(save.press, ALICE, GROUP), surface)
    assert ack.text == "Not saved"
    assert "changed after this draft was made" in surface.texts[-1]
    saved = await brands.get(GROUP)
    assert saved.profile.tone == "专业、克制" and saved.revision == 2


async def test_brand_show_edit_and_clear(service) -> None:
    brands = BrandStore(service.store.db)
    surface = RecordingSurface()
    await service.handle(say("/brand"), surface)
    assert "This chat has no brand profile yet" in surface.texts[-1]
    await brands.save(GROUP, PROFILE, by="telegram:alice")
    await service.handle(say("/brand edit 山茶花精华.价格: 139元", BOB), surface)
    assert "¥139" in surface.texts[-1]
    await service.handle(say("/brand edit never+: 大牌平替", BOB), surface)
    await service.handle(say("/brand edit 精华液.重量: 50g", BOB), surface)
    await service.handle(say("/brand edit colour: red", BOB), surface)
    assert surface.texts[-1].startswith("Not changed: unknown field “colour”")
    saved = await brands.get(GROUP)
    product = saved.profile.products[0]
    assert product.price == Money(Decimal("139")) and product.spec("重量") == Spec("重量", Decimal("50"), "g")
    assert saved.profile.words_never == ("便宜货", "平替", "大牌平替") and saved.revision == 4
    assert saved.updated_by == "telegram:bob"
    await service.handle(say("/brand"), surface)
    assert "**品牌资料 · 山茶集**" in surface.texts[-1] and "禁用词：便宜货、平替、大牌平替" in surface.texts[-1]
    await service.handle(say("/brand clear"), surface)
    assert await brands.get(GROUP) is None and "removed" in surface.texts[-1]


def test_edits_are_checked_like_any_profile() -> None:
    assert apply_edit(PROFILE, "product+: 山茶面霜").products[1].name == "山茶面霜"
    assert apply_edit(PROFILE, "product-: 精华液").products == ()
    assert apply_edit(PROFILE, "use: 温润、清透").words_to_use == ("温润", "清透")
    for bad, reason in (
        ("山茶花精华.价格: 很便宜", "is not a price"),
        ("面霜.价格: 99", "no product called “面霜”"),
        ("name:", "needs a name"),
        ("audience: " + "长" * 301, "at most 300"),
        ("tone", "Usage"),
    ):
        try:
            apply_edit(PROFILE, bad)
        except BrandError as exc:
            assert reason in str(exc), (bad, str(exc))
        else:
            raise AssertionError(f"{bad!r} was accepted")


async def test_saving_names_the_revision_it_started_from(service) -> None:
    brands = BrandStore(service.store.db)
    first = await brands.save(Place.parse("slack:T1:C1:1700.1"), PROFILE, by="slack:U1", revision=0)
    assert first.place == Place("slack", "T1", "C1") and first.revision == 1
    try:
        await brands.save(ConversationKey("slack", "T1", "C1", ""), PROFILE, by="slack:U2", revision=0)
    except StaleBrand:
        pass
    else:
        raise AssertionError("a second 'create' overwrote the first")
    assert (await brands.save(first.place, PROFILE, by="slack:U2", revision=1)).revision == 2


# --- the profile in the prompt ----------------------------------------------------------------------------


async def test_the_profile_is_in_the_stable_prompt_of_every_copy_and_refinement(service, fake_gateway) -> None:
    await BrandStore(service.store.db).save(GROUP, PROFILE, by="telegram:alice")
    await service.handle(say("/style xiaohongshu"), RecordingSurface())
    fake_gateway.script(
        Answer(
            text=variants("山茶花精华真的温和🌼，30ml 够用一个月。", "植萃配方，上脸很舒服🌿。", "换季也能安心用✨。")
        )
    )
    first = RecordingSurface()
    await service.handle(say("/copy 写山茶花精华的种草笔记"), first)
    fake_gateway.script(Answer(text=variants("晚上用一点，第二天脸很软🌙。", "精华液质地清爽💧。", "适合通勤前用☀️。")))
    await service.handle(say("/copy 再写一组，夜间护肤场景", BOB), RecordingSurface())
    fake_gateway.script(Answer(text=variants("精华液一抹就化开💧。")))
    tap = Action(Press(REFINE_PRESS, first.writes[-1].turn_id, ("2", "shorter")), BOB, GROUP)
    assert (await service.act(tap, RecordingSurface())).text == "On it…"
    await service.drain()

    systems = [r.body["messages"][0]["content"] for r in fake_gateway.requests]
    assert len(systems) == 3 and len(set(systems)) == 1, "identical bytes on every turn"
    assert systems[0].endswith("\n\n" + prompt_section(PROFILE))
    assert "Brand: 山茶集" in systems[0] and "- 山茶花精华 (also called 精华液): price ¥129; 容量 30ml" in systems[0]
    assert "Words it never uses: 便宜货、平替" in systems[0]
    # Another chat has no profile: nothing of it in its prompt.
    await service.handle(say("hello", key=OTHER), RecordingSurface())
    assert "山茶集" not in fake_gateway.last.body["messages"][0]["content"]


# --- the compliance check and its repair round ---------------------------------------------------------


async def test_flagged_variants_are_repaired_once_and_what_stays_bad_is_marked(service, fake_gateway) -> None:
    await BrandStore(service.store.db).save(GROUP, PROFILE, by="telegram:alice")
    await service.handle(say("/style xiaohongshu"), RecordingSurface())
    fake_gateway.script(
        Answer(
            text=variants(
                "这是我用过最佳的精华🌼，温和又好吸收。",
                "山茶花精华上脸很舒服🌿，30ml 刚好一个月。",
                "全网最低价🔥，只要129元！",
            )
        ),
        # The repair: option 1 now clean; option 3 swaps one price claim for another (not better: kept as it was).
        Answer(
            text=json.dumps(
                {
                    "variants": [
                        {
                            "title": "山茶花精华1",
                            "body": "这是我用过很出色的精华🌼，温和又好吸收。",
                            "hashtags": ["山茶花", "护肤", "精华"],
                        },
                        {
                            "title": "山茶花精华3",
                            "body": "史上最低价🔥，只要129元！",
                            "hashtags": ["山茶花", "护肤", "精华"],
                        },
                    ]
                },
                ensure_ascii=False,
            )
        ),
    )
    surface = RecordingSurface()
    await service.handle(say("/copy 山茶花精华种草"), surface)

    assert len(fake_gateway.requests) == 2, "one repair round, no more"
    repair = last_user_text(fake_gateway.last.body)
    assert '"最佳"' in repair and '"全网最低价"' in repair, "the flagged phrases are quoted"
    assert "- 方案 1:" in repair and "- 方案 3:" in repair and "- 方案 2:" not in repair
    assert "Rewrite only the quoted phrases of option(s) 1, 3" in repair and "exactly 2 variant(s)" in repair
    assert fake_gateway.last.body.get("response_format"), "the repair is structured output too"

    shown = surface.texts[-1]
    one, two, three = shown.split("\n\n\n")
    assert "很出色的精华" in one and "最佳" not in one
    assert one.endswith("_✅ 合规检查：未发现问题（已自动改写 1 处）_")
    assert two.endswith("_✅ 合规检查：未发现问题_")
    assert three.startswith("**方案 3** · **山茶花精华3** ⛔") and "全网最低价🔥" in three
    assert "_⛔ 合规检查未通过：1 处须修改_" in three and "- 「全网最低价」价格比较 → 「活动价」" in three
    assert "⛔" not in one + two

    # "Fix compliance" is offered where something is still found, first, and nowhere else.
    choices = [row for row in surface.writes[-1].controls if isinstance(row, Choice)]
    assert [[b.press.args[1] for b in c.options] for c in choices] == [list(ACTIONS), list(ACTIONS), [COMPLY, *ACTIONS]]
    assert choices[2].options[0].label == "合规修改"
    turn = await service.store.turn(surface.writes[-1].turn_id)
    stored = await service.store.part_data(turn.response_message_id, COPY_PART)
    assert [c["failed"] for c in stored["compliance"]] == [False, False, True]
    assert stored["compliance"][2]["findings"][0]["rule"] == "price.lowest"


async def test_fix_compliance_quotes_the_flagged_phrases_and_its_answer_is_checked(service, fake_gateway) -> None:
    await BrandStore(service.store.db).save(GROUP, PROFILE, by="telegram:alice")
    await service.handle(say("/style xiaohongshu"), RecordingSurface())
    bad = "平替也比不上它🔥，加vx：shancha88 领券"
    fake_gateway.script(
        Answer(text=variants("山茶花精华上脸很舒服🌿。", bad, "换季也能安心用✨。")), Answer(text=variants(bad))
    )  # the repair round changed nothing
    surface = RecordingSurface()
    await service.handle(say("/copy 写两版"), surface)
    assert "**方案 2** · **山茶花精华2** ⛔" in surface.texts[-1]
    assert "- 「平替」品牌禁用词\n- 「vx：shancha88」平台规则 → 删除" in surface.texts[-1]

    fake_gateway.script(Answer(text=variants("这支精华很适合换季用🌿，评论区聊聊你的用法。")))
    fixed = RecordingSurface()
    tap = Action(Press(REFINE_PRESS, surface.writes[-1].turn_id, ("2", COMPLY)), BOB, GROUP)
    assert (await service.act(tap, fixed)).text == "On it…"
    await service.drain()
    asked = last_user_text(fake_gateway.last.body)
    assert "Refine option 2" in asked and '"平替"' in asked and '"vx：shancha88"' in asked
    assert "Rewrite only those phrases" in asked
    assert "换季" in fixed.texts[-1] and fixed.texts[-1].endswith("_✅ 合规检查：未发现问题_")
    # A tap on a clean variant's "fix compliance" (an older message) changes nothing.
    clean = Action(Press(REFINE_PRESS, surface.writes[-1].turn_id, ("1", COMPLY)), BOB, GROUP)
    assert (await service.act(clean, fixed)).text == "Nothing to do."
    assert "方案 1 没有发现需要修改的用语" in fixed.texts[-1]


async def test_a_failed_repair_call_still_shows_the_variants_with_their_findings(service, fake_gateway) -> None:
    await service.handle(say("/style xiaohongshu"), RecordingSurface())
    fake_gateway.script(
        Answer(text=variants("最佳选择🌼，温和好用。", "上脸很舒服🌿。", "换季也能安心用✨。")),
        Answer(status=400, error_body={"error": {"message": "bad request"}}),
    )
    surface = RecordingSurface()
    await service.handle(say("/copy 山茶花精华"), surface)
    assert len(fake_gateway.requests) == 2
    shown = surface.texts[-1]
    assert "**方案 1** · **山茶花精华1** ⛔" in shown and "- 「最佳」绝对化用语 → 「出色」" in shown
    assert shown.count("_✅ 合规检查：未发现问题_") == 2
    turn = await service.store.turn(surface.writes[-1].turn_id)
    assert turn.state is TurnState.DONE


def test_the_operators_rules_directory_is_checked_when_settings_load(tmp_path) -> None:
    from bot.config import SettingsError, load_settings

    for value, problem in (
        (str(tmp_path / "missing"), "not a directory"),
        (str(tmp_path), "broken.toml: not valid TOML"),
    ):
        if value == str(tmp_path):
            (tmp_path / "broken.toml").write_text("[[rules]\n", encoding="utf-8")
        try:
            load_settings(require_api_key=False, _env_file=None, BOT_COMPLIANCE_RULES_DIR=value)
        except SettingsError as exc:
            assert len(exc.lines) == 1 and exc.lines[0].startswith("BOT_COMPLIANCE_RULES_DIR: "), exc.lines
            assert problem in exc.lines[0], exc.lines
        else:
            raise AssertionError(f"{value} was accepted")

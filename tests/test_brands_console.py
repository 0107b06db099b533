"""Brand profiles and compliance in the terminal (issue 18): the real console adapter reading
piped lines, the real core and store, the fake gateway — and ``bot check`` as a real process,
its exit status what a script or CI job sees."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from adapters.console.chat import ConsoleAdapter, run_chat
from adapters.console.settings import ConsoleSettings
from bot.brands.profile_draft import parse_profile
from bot.platform.messages import ConversationKey
from bot.process.runtime import build_runtime
from bot.store.brands import BrandStore
from tests.fakes.gateway import Answer, last_user_text
from tests.processes import bot_env, start_bot

PROFILE = {
    "name": "山茶集",
    "audience": "",
    "tone": "温和",
    "words_to_use": [],
    "words_never": ["平替"],
    "products": [
        {
            "name": "山茶花精华",
            "aliases": [],
            "selling_points": ["温和不刺激"],
            "price": "129元",
            "specs": [{"name": "容量", "value": "30ml"}],
        }
    ],
}
ME = ConversationKey("console", "local", "tester")
BRAND = parse_profile(json.dumps(PROFILE, ensure_ascii=False)).profile


def notes(*bodies: str) -> str:
    return json.dumps(
        {
            "variants": [
                {"title": f"山茶{i}", "body": body, "hashtags": ["山茶花", "护肤", "精华"]}
                for i, body in enumerate(bodies, 1)
            ]
        },
        ensure_ascii=False,
    )


async def test_brand_check_copy_and_fix_compliance_in_the_console(runtime, fake_gateway, tmp_path: Path) -> None:
    adapter = runtime.adapter(ConsoleAdapter, ConsoleSettings.load(_env_file=None))
    assert isinstance(adapter, ConsoleAdapter)
    fake_gateway.script(
        Answer(text=json.dumps(PROFILE, ensure_ascii=False)),  # /brand set
        Answer(text=notes("上脸很舒服🌿。", "大牌平替🔥，闭眼入。", "换季也能安心用✨。")),  # /copy
        Answer(text=notes("大牌平替🔥，闭眼入。")),  # its repair round: unchanged
        Answer(text=notes("口碑好物🔥，换季放心用。")),
    )  # /refine 2 comply
    attached = tmp_path / "draft.txt"
    attached.write_text("这款面霜效果最好的！", encoding="utf-8")
    lines = [
        "/brand set 山茶集，山茶花精华 30ml 129元，禁用词：平替",
        "/brand save",
        "/check xiaohongshu 山茶花精华只要99元，加vx：abc123",
        f"/attach {attached}",
        "/check",
        "/style xiaohongshu",
        "/copy 写山茶花精华",
        "/refine 2 comply",
        "/brand",
    ]
    out = io.StringIO()
    await run_chat(adapter, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out, user="tester")
    shown = out.getvalue()

    assert "品牌资料草稿 · 山茶集" in shown and "发送 `/brand save`" in shown
    assert "已保存（tester）：**山茶集** 是本聊天的品牌资料" in shown
    stored = await BrandStore(runtime.db).get(ME)
    assert stored is not None and stored.profile == BRAND
    assert "**合规检查（小红书种草笔记 · 山茶集）**：2 处须修改" in shown
    assert "「99元」与品牌资料不符 → 「129元」" in shown and "「vx：abc123」平台规则 → 删除" in shown
    assert "1. 「最好」绝对化用语 → 「很好」" in shown, "an attached draft is checked"
    assert "**方案 2** · **山茶2** ⛔" in shown and "- 「平替」品牌禁用词" in shown
    assert len(fake_gateway.requests) == 4
    asked = last_user_text(fake_gateway.last.body)
    assert "Refine option 2" in asked and '"平替"' in asked
    assert "口碑好物🔥" in shown and shown.count("_✅ 合规检查：未发现问题_") == 3  # options 1 and 3, the fix
    assert shown.rstrip().endswith("`/brand clear` removes it.")


# --- bot check, a real process ----------------------------------------------------------------------


async def bot_check(*args: str, stdin: str = "", env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await start_bot("check", *args, env=bot_env(**env), cwd=cwd)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_bot_check_exit_status_stored_brands_and_the_operators_rules(
    settings, database_url: str, tmp_path: Path
) -> None:
    rt = await build_runtime(settings, migrate=False)
    try:
        await BrandStore(rt.db).save(ConversationKey("telegram", "bot", "-1001", "7"), BRAND, by="telegram:alice")
    finally:
        await rt.close()
    env = {"DATABASE_URL": database_url}
    draft = tmp_path / "draft.txt"
    draft.write_text("山茶花精华，温和不刺激。\n山茶花精华到手价99元，大牌平替！\n", encoding="utf-8")

    code, out, err = await bot_check(str(draft), env=env, cwd=tmp_path)
    assert (code, out.strip().splitlines()[-1]) == (0, "clean: nothing found"), err

    code, out, err = await bot_check(str(draft), "--brand", "telegram:bot:-1001", env=env, cwd=tmp_path)
    assert code == 1, err
    assert f"{draft}:2:9: must-fix [brand.price] 「99元」 → 129元" in out
    assert f"{draft}:2:15: must-fix [brand.never] 「平替」" in out and "2 must-fix, 0 review" in out

    code, out, _ = await bot_check(
        "-", "--style", "小红书", "--format", "json", stdin="私信我领券", env=env, cwd=tmp_path
    )
    assert code == 1 and [f["rule"] for f in json.loads(out)] == ["platform.dm-invite"]

    # The operator's own lists come from BOT_COMPLIANCE_RULES_DIR.
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "house.toml").write_text(
        '[source]\ntitle = "市场部禁用词"\nreference = "品牌手册"\n'
        'compiled = 2026-12-01\n\n[[rules]]\nid = "house.rivals"\n'
        'zh = "不点名竞品。"\nterms = ["竞品A"]\n',
        encoding="utf-8",
    )
    with_rules = {**env, "BOT_COMPLIANCE_RULES_DIR": str(rules)}
    code, out, err = await bot_check("-", stdin="比竞品A好用", env=with_rules, cwd=tmp_path)
    assert code == 1 and "[house.rivals] 「竞品A」" in out, err

    for args, reason in (
        (("--brand", "telegram:bot:-9999"), "no chat with that key has a brand profile"),
        (("--style", "nope"), "unknown style"),
        (("--nope",), "unrecognized arguments"),
    ):
        code, out, err = await bot_check("-", *args, stdin="好用", env=env, cwd=tmp_path)
        assert code == 2 and reason in err, (args, err)

"""Characters in the terminal (``bot chat``'s adapter on the real core): a card attached as a
file and saved with ``/character save`` (nothing can be tapped here), a scene printed as a
script, and ``/character export`` writing the card to a file whose path is printed."""

from __future__ import annotations

import io
import json
from pathlib import Path

from adapters.console.chat import ConsoleAdapter, run_chat
from adapters.console.settings import ConsoleSettings
from bot.characters.cards import read_card
from tests.fakes.gateway import Answer
from tests.test_characters_cards import raw
from tests.test_characters_telegram import png_card, scene_answer


async def test_import_scene_and_export_in_the_console(runtime, fake_gateway, tmp_path: Path) -> None:
    (tmp_path / "tuantuan.png").write_bytes(png_card())
    (tmp_path / "bao.json").write_bytes(raw("sillytavern_v2.json"))
    exports = tmp_path / "exports"
    adapter = runtime.adapter(ConsoleAdapter, ConsoleSettings.load(_env_file=None, files_dir=str(exports)))
    assert isinstance(adapter, ConsoleAdapter)
    fake_gateway.script(
        Answer(
            text=scene_answer(
                [
                    ("团团", "船长！开业大吉～🐼", "鞠躬", ""),
                    ("Captain Bao", "Arr, fair winds to the new shop!", "raises a bun", ""),
                    ("narrator", "", "鞭炮声响起", ""),
                ],
                title="开业",
            ),
            reasoning="scene",
        ),
        Answer(text="嗯嗯～团团在！🐼", reasoning="in voice"),
    )
    lines = [
        f"/attach {tmp_path / 'tuantuan.png'}",
        "our mascot",
        "/character save",
        f"/attach {tmp_path / 'bao.json'}",
        "and a pirate",
        "/character save",
        "/character use 团团",
        "/scene 团团, Captain Bao: 新店开业",
        "/character export 团团",
        "团团在吗",
    ]
    out = io.StringIO()
    await run_chat(adapter, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out, user="tester")
    printed = out.getvalue()
    assert printed.count("Import this character?") == 2 and printed.count("Saved **") == 2
    assert "嗨嗨～tester！团团来啦🐼🍵" in printed, "the first message, addressed to the terminal's user"
    # The scene, printed as its Markdown script.
    assert "**🎬 开业**" in printed
    assert "**团团**：*（鞠躬）* 船长！开业大吉～🐼" in printed
    assert "**Captain Bao**：*（raises a bun）* Arr, fair winds to the new shop!" in printed
    assert "*（鞭炮声响起）*" in printed
    # The export: a file, its path printed, a card that reads back as the same character.
    exported = exports / "团团.json"
    assert f"saved to {exported}" in printed
    card = read_card(exported.read_bytes(), exported.name).character
    assert card.name == "团团" and json.loads(exported.read_text("utf-8"))["spec"] == "chara_card_v2"
    # Only the scene and the last line reached the model; the last one in 团团's voice.
    assert len(fake_gateway.requests) == 2
    assert '<character_sheet name="团团">' in fake_gateway.last.body["messages"][0]["content"]
    assert "嗯嗯～团团在！🐼" in printed

"""Characters as Markdown for people: the ``/character`` list, ``/character show``, the
greeting posted when a character is taken up, and which character a group message speaks to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.characters.character import Character, name_key

SCOPE_LABELS = {"workspace": "everywhere here", "group": "this group", "chat": "this chat"}


def _shown(text: str, character: Character) -> str:
    return text.replace("{{char}}", character.name).replace("{{user}}", "the user").replace("{{original}}", "").strip()


def list_markdown(entries: Sequence[tuple[Character, str]], active: str | None = None) -> str:
    """``/character``: (character, scope) pairs, the active one marked."""
    if not entries:
        return (
            "No characters here yet. Create one with `/character new NAME: who they are in one line`, "
            "or send a Character Card (PNG or JSON)."
        )
    lines = ["**Characters** (speak as one with `/character use NAME`, stop with `/character off`):", ""]
    for character, scope in entries:
        mark = " ✅" if active is not None and name_key(active) == character.key else ""
        where = SCOPE_LABELS.get(scope, scope)
        lines.append(f"- **{character.name}** — {_shown(character.tagline, character) or '…'} _({where})_{mark}")
    return "\n".join(lines)


def card_markdown(character: Character, *, max_chars: int = 3_000) -> str:
    """``/character show``: the parts that make the character, shortened to ``max_chars``."""
    c = character
    head = f"**{c.name}**" + (f" ({c.nickname})" if c.nickname else "")
    lines = [head + (f" — {c.identity}" if c.identity else "")]
    for label, text in (("Personality", c.personality), ("Background", c.background), ("Scenario", c.scenario)):
        if text:
            lines.append(f"**{label}:** {text}")
    if not c.speech.empty:
        parts = [c.speech.vocabulary, c.speech.punctuation, c.speech.emoji]
        if c.speech.catchphrases:
            parts.append(" / ".join(f"“{p}”" for p in c.speech.catchphrases))
        lines.append("**Speech:** " + "; ".join(p for p in parts if p))
    if c.boundaries:
        lines.append("**Never:** " + "; ".join(c.boundaries))
    if c.examples:
        lines.append(f"**Example dialogues:** {len(c.examples)}")
    if c.first_message:
        lines.append(f"**First message:** {c.first_message}")
    facts = [
        f"{len(c.lore)} lore entries" if c.lore else "",
        f"language {c.language}" if c.language else "",
        f"by {c.creator}" if c.creator else "",
        f"v{c.character_version}" if c.character_version else "",
    ]
    if any(facts):
        lines.append("_" + " · ".join(f for f in facts if f) + "_")
    text = _shown("\n\n".join(lines), c)
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def greeting(character: Character, user_name: str, index: int = 0) -> str:
    """The first message (or alternate greeting ``index``), addressed to the person who took
    the character up. It is history, not prefix: a real name is fine here."""
    greetings = character.greetings()
    if not greetings:
        return ""
    text = greetings[index % len(greetings)]
    return text.replace("{{char}}", character.name).replace("{{user}}", user_name or "there")


def addressed(text: str, characters: Sequence[Character]) -> Character | None:
    """The character a group message speaks to by name: ``@Name`` anywhere, or the name (or
    nickname) opening the message (``团团，…``, ``Mochi: …``). Longest name first, so
    "Captain Bao" wins over "Bao"."""
    stripped = text.lstrip()
    folded = name_key(stripped[:200])
    names = sorted(
        ((name_key(n), c) for c in characters for n in (c.name, c.nickname) if n), key=lambda item: -len(item[0])
    )
    for key, character in names:
        if re.search(r"(?:^|\s)@" + re.escape(key) + r"(?!\w)", folded):
            return character
        if folded.startswith(key) and (len(folded) == len(key) or not folded[len(key)].isalnum() or not key.isascii()):
            return character
    return None

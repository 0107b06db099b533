"""``/character …`` and ``/scene …``, the same on every platform (commands reach the core as
text; Slack's ``!character`` in a thread too).

Permissions: anyone who may use the bot lists, shows, exports, drafts and imports
characters. A card is edited or deleted by its owner or a bot admin (``BOT_ADMINS``). In
a group, which character the group speaks as is switched by anyone while none is set, and
after that only by the active character's owner or an admin (fans can't turn the mascot
off); ``share`` (a character for every chat of the workspace) is for admins.
"""

from __future__ import annotations

import logging
import re

from bot.characters import show
from bot.characters.card_draft import parse_new_args
from bot.characters.cards import export_filename, export_json, export_png
from bot.characters.character import EDITABLE, CharacterError, edit
from bot.characters.character_feature import DRAFT_KIND, SCENE_KIND, CharacterChat, CharacterFeature
from bot.characters.offers import Offers
from bot.characters.scenes import parse_scene_args
from bot.core.kinds import CommandCall, Core
from bot.core.turns import TurnRequest
from bot.platform.messages import IncomingMessage
from bot.platform.surface import RateLimited, WriteFailed
from bot.store.characters import CharacterScope, NameTaken, SavedCharacter

log = logging.getLogger(__name__)
USAGE = (
    "`/character` lists the characters here · `/character use NAME` · `/character off` · "
    "`/character new NAME: who they are in one line` · `/character show [NAME]` · "
    "`/character edit [NAME] FIELD: text` · `/character delete NAME` · `/character export [NAME] [png]` · "
    "`/scene NAME, NAME: situation` · send a Character Card (PNG or JSON) to import it."
)
FIELDS = ", ".join(sorted({k for k in EDITABLE if k.isascii()}))
FORMATS = ("json", "png")
ALIASES = {
    "": "list",
    "list": "list",
    "ls": "list",
    "use": "use",
    "off": "off",
    "stop": "off",
    "none": "off",
    "new": "new",
    "create": "new",
    "show": "show",
    "info": "show",
    "edit": "edit",
    "set": "edit",
    "delete": "delete",
    "remove": "delete",
    "rm": "delete",
    "export": "export",
    "save": "save",
    "import": "save",
    "share": "share",
    "help": "help",
    "列表": "list",
    "使用": "use",
    "关闭": "off",
    "新建": "new",
    "查看": "show",
    "编辑": "edit",
    "删除": "delete",
    "导出": "export",
    "保存": "save",
}


def _field_key(words: list[str]) -> str:
    return re.sub(r"[\s-]+", "_", " ".join(words).strip().lower())


class CharacterCommands:
    def __init__(self, feature: CharacterFeature, offers: Offers) -> None:
        self.feature = feature
        self.offers = offers

    @property
    def characters(self):  # noqa: ANN201 - the feature's CharacterStore
        return self.feature.characters

    async def character(self, call: CommandCall) -> None:
        head, _, rest = call.args.strip().partition(" ")
        if "\n" in head:  # "/character new\nMochi: …"
            head, _, more = head.partition("\n")
            rest = f"{more} {rest}".strip()
        sub = ALIASES.get(head.lower())
        where = CharacterChat(call.msg.key, call.msg.group)
        if sub is None:
            await call.core.notify(call.surface, f"I don't know “{head}” for /character. {USAGE}")
            return
        handler = getattr(self, f"_{sub}")
        try:
            await handler(call, where, rest.strip())
        except CharacterError as exc:  # worded for the user
            await call.core.notify(call.surface, str(exc))

    # --- subcommands ---
    async def _help(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        await call.core.notify(call.surface, USAGE)

    async def _list(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        saved = await self.characters.usable(where.key)
        active = await self._active(call.core, where)
        text = show.list_markdown(
            [(s.character, s.scope.value) for s in saved], active=active.name if active is not None else None
        )
        await call.core.notify(call.surface, f"{text}\n\n{USAGE}" if saved else text)

    async def _use(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        core = call.core
        if not rest:
            raise CharacterError("Which one? `/character use NAME` (`/character` lists them).")
        saved = await self._named(where, rest)
        conv = await core.store.conversation(where.key, shared=where.group)
        assert conv is not None
        if conv.character_id == saved.id:
            await core.notify(call.surface, f"I'm speaking as **{saved.name}** here already.")
            return
        await self._check_switch(core, conv, call)
        await self.feature.take_up(core, where, saved, call.msg.author, call.surface)

    async def _off(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        core = call.core
        conv = await core.store.conversation(where.key, shared=where.group)
        assert conv is not None
        if conv.character_id is None:
            await core.notify(call.surface, "No character is speaking here.")
            return
        await self._check_switch(core, conv, call)
        await self.feature.take_up(core, where, None, call.msg.author, call.surface)

    async def _new(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        name, line = parse_new_args(rest)
        existing = await self.characters.find(where.key, name)
        if existing is not None:
            raise NameTaken(existing.name)
        msg = call.msg
        author = msg.author
        request = TurnRequest(DRAFT_KIND, {"name": name, "line": line, "by": author.id, "by_name": author.name})
        await call.core.submit(
            IncomingMessage(
                key=msg.key,
                author=author,
                text=msg.text,
                message_id=msg.message_id,
                addressed=True,
                group=msg.group,
                reply_to=msg.reply_to,
            ),
            call.surface,
            request,
        )

    async def _show(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        saved = await self._named_or_active(call.core, where, rest)
        facts = [show.SCOPE_LABELS[saved.scope.value], f"about {saved.prompt_tokens:,} tokens in every prompt"]
        if saved.owner == call.msg.author.id:
            facts.append("yours")
        text = show.card_markdown(saved.character) + "\n\n_" + " · ".join(facts) + "_"
        await call.core.notify(call.surface, text)

    async def _edit(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        core = call.core
        match = re.match(r"(?P<head>[^:：]+)[:：](?P<text>.*)", rest, re.DOTALL)
        if match is None:
            raise CharacterError(f"Usage: `/character edit [NAME] FIELD: new text`. Fields: {FIELDS}.")
        words, text = match["head"].split(), match["text"].strip()
        saved, field = None, ""
        for cut in range(len(words)):  # "Captain Bao first message": the name, then the field
            if _field_key(words[cut:]) not in EDITABLE:
                continue
            field = _field_key(words[cut:])
            saved = await (self._named(where, " ".join(words[:cut])) if cut else self._named_or_active(core, where, ""))
            break
        if saved is None:
            raise CharacterError(f"There is no field “{' '.join(words)}”. Fields: {FIELDS}.")
        self._check_owner(core, where, call, saved, "edit")
        updated = edit(saved.character, field, text, self.feature.limits)
        result = await self.characters.update(saved.id, updated, revision=saved.revision)
        self.feature.changed(where.key)
        await core.notify(
            call.surface,
            f"Updated {result.name}'s {field.replace('_', ' ')} "
            f"(about {result.prompt_tokens:,} tokens in every prompt now).",
        )

    async def _delete(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        if not rest:
            raise CharacterError("Which one? `/character delete NAME`.")
        saved = await self._named(where, rest)
        self._check_owner(call.core, where, call, saved, "delete")
        await self.characters.delete(saved.id)
        self.feature.changed()
        await call.core.notify(
            call.surface, f"Deleted **{saved.name}**. Chats that spoke as {saved.name} are back to the plain assistant."
        )

    async def _export(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        words = rest.split()
        fmt = words.pop().lower() if words and words[-1].lower() in FORMATS else "json"
        saved = await self._named_or_active(call.core, where, " ".join(words))
        character = saved.character
        if fmt == "png":
            data, mime = export_png(character, await self.characters.avatar(saved.id)), "image/png"
        else:
            data, mime = export_json(character), "application/json"
        name = export_filename(character, fmt)
        caption = f"{character.name} — Character Card V2 ({fmt.upper()})"
        try:
            sent = await call.surface.send_file(name, data, mime, caption)
        except (WriteFailed, RateLimited) as exc:  # the platform refused the file: the text still helps
            log.warning("characters: sending %s as a file failed: %s", name, exc)
            sent = None
        if sent is None:  # this surface posts no files
            text = export_json(character).decode("utf-8")
            stem = name.rsplit(".", 1)[0]
            await call.core.notify(
                call.surface,
                f"I couldn't send a file here, so here is {character.name}'s card as "
                f"text (V2 JSON): save it as `{stem}.json` to import it elsewhere."
                f"\n\n```json\n{text}\n```",
            )

    async def _save(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        await self.offers.save_latest(call.core, where, call.msg.author, call.surface)

    async def _share(self, call: CommandCall, where: CharacterChat, rest: str) -> None:
        core = call.core
        if not core.ops.access.is_admin(where.key.platform, call.msg.author.id):
            raise CharacterError("Only an admin can share a character with every chat here.")
        saved = await self._named_or_active(core, where, rest)
        shared = await self.characters.set_scope(saved.id, CharacterScope.WORKSPACE, where.key.chat)
        self.feature.changed()
        await core.notify(call.surface, f"**{shared.name}** can now be used in every chat of this workspace.")

    # --- /scene ---
    async def scene(self, call: CommandCall) -> None:
        try:
            asked = parse_scene_args(call.args)
        except CharacterError as exc:
            await call.core.notify(call.surface, str(exc))
            return
        msg = call.msg
        await call.core.submit(
            IncomingMessage(
                key=msg.key,
                author=msg.author,
                text=msg.text,
                message_id=msg.message_id,
                addressed=True,
                group=msg.group,
                reply_to=msg.reply_to,
            ),
            call.surface,
            TurnRequest(SCENE_KIND, {"names": list(asked.names), "situation": asked.situation}),
        )

    # --- helpers ---
    async def _active(self, core: Core, where: CharacterChat) -> SavedCharacter | None:
        conv = await core.store.conversation(where.key, create=False)
        if conv is None or conv.character_id is None:
            return None
        return await self.characters.get(conv.character_id)

    async def _named(self, where: CharacterChat, name: str) -> SavedCharacter:
        saved = await self.characters.find(where.key, name.strip())
        if saved is None:
            known = ", ".join(s.name for s in await self.characters.usable(where.key)) or "none yet"
            raise CharacterError(f"There is no character called “{name.strip()}” here. Characters here: {known}.")
        return saved

    async def _named_or_active(self, core: Core, where: CharacterChat, name: str) -> SavedCharacter:
        if name.strip():
            return await self._named(where, name)
        active = await self._active(core, where)
        if active is None:
            raise CharacterError("Name the character (no character is speaking here): `/character` lists them.")
        return active

    def _check_owner(
        self, core: Core, where: CharacterChat, call: CommandCall, saved: SavedCharacter, what: str
    ) -> None:
        if not self.feature.may_change(core, where.key, call.msg.author.id, saved):
            raise CharacterError(f"Only {saved.name}'s owner (whoever created it) or an admin can {what} it.")

    async def _check_switch(self, core: Core, conv, call: CommandCall) -> None:  # noqa: ANN001
        blocker = await self.feature.may_switch(core, conv, call.msg.author.id)
        if blocker is not None:
            raise CharacterError(
                f"This group speaks as {blocker.name}; only {blocker.name}'s owner or an admin can "
                "switch characters here."
            )

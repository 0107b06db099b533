"""Characters registered with the core as one ``Extension``: the ``/character`` and
``/scene`` commands, the draft and scene turn kinds, the Save control, the card-file hook,
the addressing hook (a character called by name in a group) and the prompt hook (the voice).

Built per runtime (``characters_extension(store)``): the hooks read the database.
"""

from __future__ import annotations

from bot.characters.character_commands import CharacterCommands
from bot.characters.character_feature import CharacterFeature
from bot.characters.character_turns import DraftKind, SceneKind
from bot.characters.offers import PRESS, Offers
from bot.core.kinds import Command, Extension
from bot.platform.inbox import CommandInfo
from bot.store.repo import Store

COMMANDS = (
    CommandInfo(
        "character", "Characters: list, use, new, show, edit, export · 角色", "[use|off|new|show|edit|export] …"
    ),
    CommandInfo("scene", "A scene between characters · 角色对话", "<name>, <name>: <situation>"),
)


def characters_extension(store: Store) -> Extension:
    feature = CharacterFeature(store)
    offers = Offers(feature)
    commands = CharacterCommands(feature, offers)
    character, scene = COMMANDS
    return Extension(
        kinds=(DraftKind(feature), SceneKind(feature)),
        # In line: they change what later messages mean (the voice), or queue a turn.
        commands=(Command(character, commands.character, in_line=True), Command(scene, commands.scene, in_line=True)),
        presses={PRESS: offers.on_press},
        prompt=(feature.prompt_addition,),
        attachments=(offers.claim,),
        addressing=(feature.addressed,),
    )

"""What platforms see of the bot: the one package adapters import from ``bot``.

An adapter (``adapters/<name>/``) subclasses ``Platform``, declares a ``PlatformPlugin``
with its ``PlatformSettings``, and talks to the core only through the ``Inbox`` it is
given; it renders answers on a ``ReplySurface`` (and a ``NativeStream`` where the platform
streams natively) and calls its platform through ``guarded`` with budgets for the
platform's limits. Everything it may use is named here.
"""

from bot.config import id_set
from bot.platform.base import ADMITTED, Admission, Gate, Health, Platform, PlatformPlugin, PlatformSettings
from bot.platform.controls import (
    Button,
    Choice,
    Click,
    ControlKind,
    Controls,
    Press,
    Row,
    stop_press,
)
from bot.platform.files import WHAT_I_READ, FileKind, readable
from bot.platform.inbox import (
    Ack,
    Acknowledge,
    Arrival,
    Build,
    CommandInfo,
    Inbox,
    Membership,
    Moved,
    Notice,
    Surfaces,
)
from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage
from bot.platform.request_body import BodyProblem, read_capped
from bot.platform.split import split_markdown, split_point
from bot.platform.surface import (
    Ending,
    MessageRef,
    NativeStream,
    ReplySurface,
    Step,
    StepState,
    StreamUnavailable,
    SurfaceGone,
    SurfaceLimits,
    Write,
    WriteFailed,
    steps_line,
    utf16_len,
)
from bot.ratelimits.budgets import Budget, BudgetMap, Dropped, Priority, acquire_first, guarded
from bot.ratelimits.counters import Counters, Window
from bot.ratelimits.rate_limited import RateLimited

__all__ = [
    "Ack",
    "Acknowledge",
    "acquire_first",
    "Admission",
    "ADMITTED",
    "Arrival",
    "Attachment",
    "Author",
    "BodyProblem",
    "Budget",
    "BudgetMap",
    "Build",
    "Button",
    "Choice",
    "Click",
    "CommandInfo",
    "ControlKind",
    "Controls",
    "ConversationKey",
    "Counters",
    "Dropped",
    "Ending",
    "FileKind",
    "Gate",
    "guarded",
    "Health",
    "id_set",
    "Inbox",
    "IncomingMessage",
    "Membership",
    "MessageRef",
    "Moved",
    "Notice",
    "NativeStream",
    "Platform",
    "PlatformPlugin",
    "PlatformSettings",
    "Press",
    "Priority",
    "RateLimited",
    "read_capped",
    "readable",
    "ReplySurface",
    "Row",
    "split_markdown",
    "split_point",
    "Step",
    "steps_line",
    "StepState",
    "stop_press",
    "StreamUnavailable",
    "SurfaceGone",
    "SurfaceLimits",
    "Surfaces",
    "utf16_len",
    "WHAT_I_READ",
    "Window",
    "Write",
    "WriteFailed",
]

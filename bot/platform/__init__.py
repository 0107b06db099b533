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
from bot.platform.inbox import (
    Ack,
    Acknowledge,
    Arrival,
    Build,
    CommandInfo,
    Inbox,
    Membership,
    Moved,
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
    "ADMITTED", "Ack", "Acknowledge", "Admission", "Arrival", "Attachment", "Author", "BodyProblem", "Budget",
    "BudgetMap", "Build", "Button", "Choice", "Click", "CommandInfo", "ControlKind", "Controls", "ConversationKey",
    "Counters", "Dropped", "Ending", "Gate", "Health", "Inbox", "IncomingMessage", "Membership", "MessageRef", "Moved",
    "NativeStream", "Platform", "PlatformPlugin", "PlatformSettings", "Press", "Priority", "RateLimited",
    "ReplySurface", "Row", "Step", "StepState",
    "StreamUnavailable", "SurfaceGone", "SurfaceLimits", "Surfaces", "Window", "Write",
    "WriteFailed", "acquire_first", "guarded", "id_set", "read_capped", "split_markdown", "split_point",
    "steps_line", "stop_press", "utf16_len",
]

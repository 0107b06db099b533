"""A terminal conversation through the same core and store (``bot chat``)."""
from adapters.console.chat import run_chat
from adapters.console.surface import ConsoleSurface

__all__ = ["ConsoleSurface", "run_chat"]

"""What the bot says in its own voice (not the model's)."""
from __future__ import annotations

HELP = """I'm an assistant powered by a large language model. Talk to me normally — I keep the thread's history.

Commands:
/new — start a fresh conversation here (the history so far is kept but no longer sent)
/usage — tokens used in this conversation
/stop — stop the answer being written
/style — list, set or clear a copywriting style (e.g. /style xiaohongshu)
/copy <brief> — write copy variants in the current style
/refine <n> <action> — rework variant n: shorter, longer, playful, formal, translate, regenerate
/help — this message

我也擅长中文写作和营销文案：先用 /style 选一个风格，再发需求即可。"""

NEW_THREAD = "Started a new conversation. Earlier messages won't be used from now on."
INTERRUPTED = "_(answer interrupted: {reason})_"
STOPPED = "_(stopped)_"
RESTART_MARKER = "_(answer interrupted: the bot restarted mid-answer)_"
SHUTDOWN_MARKER = "_(answer interrupted: the bot was shutting down)_"
THINKING = "thinking…"
LENGTH_CUT = "_(the answer reached the length limit and was cut here)_"
CONTENT_FILTER = "_(the model stopped: the content was filtered)_"
EMPTY_ANSWER = "The model returned an empty answer. Please try again or rephrase."
VISION_OFF = "Note: image input is turned off for this model, so I can't see the picture(s); I'll answer the text."
INTERNAL_ERROR = "Something went wrong on my side while answering; it has been logged. Please try again."
NOTHING_TO_REGENERATE = "There is nothing to regenerate here."
EARLIER_CONVERSATION = "That answer belongs to an earlier conversation (after /new)."
STILL_ANSWERING = "I'm still answering; press Regenerate once I'm done."
NOTHING_TO_STOP = "There is no answer being written here."
FEEDBACK_UP = "Thanks for the feedback!"
FEEDBACK_DOWN = "Thanks — noted. Press Regenerate for another try."
NOT_AVAILABLE = "Not available."
STALE_CONTROL = "This button no longer works."
WAITING_FOR_MODEL = "waiting for the model…"

"""A conservative token estimate, corrected per conversation by the gateway's usage.

MiniMax's byte-level BPE gives ~3.6 English characters per token, and Chinese costs about
1.4-1.5x the tokens of the same content in English. We count ASCII at 3 characters per
token and every other character as one token, which over-estimates both. The UTF-8
length tells non-ASCII characters apart in C speed (CJK is 3 bytes, so the extra bytes
over the character count, halved, approximate the non-ASCII count without a Python loop).
"""

from __future__ import annotations

MESSAGE_OVERHEAD = 4  # role markers and separators per message
IMAGE_TOKENS = 1_200  # a conservative flat cost per image sent


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    n_chars = len(text)
    n_bytes = len(text.encode("utf-8", "surrogatepass"))
    non_ascii = min(n_chars, (n_bytes - n_chars + 1) // 2)
    ascii_chars = n_chars - non_ascii
    return ascii_chars // 3 + non_ascii + 1

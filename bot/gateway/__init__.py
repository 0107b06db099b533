"""The model gateway: an OpenAI-compatible chat-completions endpoint, streamed over SSE."""

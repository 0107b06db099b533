"""SQL persistence: every conversation, message, turn and inbound event."""

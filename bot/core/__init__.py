"""The conversation core: turns, prompts, pacing. No platform SDK is imported here."""

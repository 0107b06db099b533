"""Characters (issue 17): a typed character, Character Card V1/V2/V3 import and V2 export,
the prompt that keeps a voice (stable prefix, few-shot turns, lore), scenes and drafts."""

"""Brand profiles in chats (issue 18): ``/brand`` shows, drafts (the model fills it from free
text, a person confirms it with one tap), edits and clears a chat's profile; the profile goes
into the stable prompt of every turn there; ``/check`` lints any text against advertising law,
the style's platform rules and the brand. Registered as one ``Extension``
(``extension.brands_extension``); the SQL is ``bot.store.brands``, the checks ``bot.compliance``.
"""

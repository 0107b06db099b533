"""Tools from MCP servers (issue 19): ``config`` (BOT_MCP_CONFIG), ``connection`` (one server,
on the official ``mcp`` SDK), ``hub`` (the servers as a per-turn tool source), ``policy``
(which chats may use which server), ``approval`` (an admin's one-tap confirmation),
``records`` (the call log and access rules in SQL), ``redact`` and ``untrusted`` (what is
stored of arguments, what the model gets of results). See docs/tools.md.

Nothing here imports the ``mcp`` SDK at import time: a bot without BOT_MCP_CONFIG never loads it.
"""

"""The ``bot`` command: run, chat, migrate."""
from __future__ import annotations

import argparse
import asyncio
import sys

from bot.config import SettingsError, load_settings
from bot.logs import setup_logging


def _settings(require_api_key: bool):  # noqa: ANN202
    try:
        return load_settings(require_api_key=require_api_key)
    except SettingsError as exc:
        print("Configuration problems (set them in the environment or .env):", file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(2) from None


def _cmd_run(_args: argparse.Namespace) -> None:
    settings = _settings(True)
    setup_logging(settings.log_level, settings.secrets(), settings.log_format)
    from bot.runner import run

    asyncio.run(run(settings))


def _cmd_chat(args: argparse.Namespace) -> None:
    settings = _settings(True)
    setup_logging("WARNING" if settings.log_level.upper() == "INFO" else settings.log_level, settings.secrets(),
                  settings.log_format)
    from adapters.console import run_chat
    from bot.runtime import build_runtime

    async def main() -> None:
        runtime = await build_runtime(settings)
        try:
            await run_chat(runtime.service, user=args.user)
        finally:
            await runtime.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print()


def _cmd_migrate(_args: argparse.Namespace) -> None:
    settings = _settings(False)
    setup_logging(settings.log_level, settings.secrets(), settings.log_format)
    from bot.store.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bot", description="A chat-bot for Slack, Telegram and the terminal.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start every configured platform and the web app on PORT").set_defaults(func=_cmd_run)
    chat = sub.add_parser("chat", help="talk to the model in the terminal (reads stdin when piped)")
    chat.add_argument("--user", default=None, help="the conversation's user name (default: your login)")
    chat.set_defaults(func=_cmd_chat)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(func=_cmd_migrate)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()

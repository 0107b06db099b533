"""The ``bot`` command: run, chat, migrate, usage, admin, check."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bot.config import Settings, SettingsError, load_settings
from bot.process.logs import setup_logging

if TYPE_CHECKING:
    from bot.platform import ConversationKey, PlatformSettings
    from bot.store.repo import Store


def _report(lines: list[str]) -> NoReturn:
    print("Configuration problems (set them in the environment or .env):", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    raise SystemExit(2)


def _settings(require_api_key: bool) -> Settings:
    try:
        return load_settings(require_api_key=require_api_key)
    except SettingsError as exc:
        _report(exc.lines)


def _cmd_run(_args: argparse.Namespace) -> None:
    from bot.lean import refuse, steady_malloc

    # The terminal's renderer (`bot chat`): httpx imports its command-line client whenever rich
    # and pygments are installed (~3.4 MB resident), and a server draws nothing in a terminal.
    refuse("rich", "pygments")
    steady_malloc()
    from bot.platform.discovery import configured

    platforms, problems = configured()
    try:
        settings = load_settings(require_api_key=True)
    except SettingsError as exc:
        problems = [*exc.lines, *problems]
    if problems:  # every problem of the core's and every platform's settings, at once
        _report(problems)
    secrets = [*settings.secrets(), *(s for p in platforms for s in p.settings.secrets())]
    quiet = tuple(name for p in platforms for name in p.plugin.quiet_loggers)
    setup_logging(settings.log_level, secrets, settings.log_format, quiet)
    from bot.process.serve import run

    asyncio.run(run(settings, platforms))


def _cmd_chat(args: argparse.Namespace) -> None:
    """The terminal: interactive when both ends are a terminal, else lines in, answers out.
    Exits with the status ``adapters.console.chat.ExitCode`` documents."""
    from adapters.console.settings import ConsoleSettings

    settings = _settings(True)
    try:
        console = ConsoleSettings.load()
    except SettingsError as exc:
        _report(exc.lines)
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.message
    level = "WARNING" if settings.log_level.upper() == "INFO" else settings.log_level
    log_file = console.log_path() if interactive else None  # logs apart from the conversation
    setup_logging(level, [*settings.secrets(), *console.secrets()], settings.log_format, file=log_file)
    raise SystemExit(asyncio.run(_chat(args, settings, console, interactive, log_file)))


async def _chat(
    args: argparse.Namespace, settings: Settings, console: PlatformSettings, interactive: bool, log_file: Path | None
) -> int:
    import signal

    from adapters.console.app import run_terminal
    from adapters.console.chat import ConsoleAdapter, conversation_key, run_chat, run_once
    from adapters.console.settings import ConsoleSettings
    from bot.process.runtime import build_runtime

    assert isinstance(console, ConsoleSettings)
    quit_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A terminal closed, SIGTERM, or Ctrl-C in a pipe: end like a quit (the answer being
    # written is stopped and stored as such; nothing is left streaming).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, quit_event.set)
    runtime = await build_runtime(settings)
    try:
        adapter = runtime.adapter(ConsoleAdapter, console)
        assert isinstance(adapter, ConsoleAdapter)
        chosen = dict(user=args.user, conversation=args.conversation, new=args.new, quit_event=quit_event)
        if args.message:  # one question; what stdin holds (a file piped in) goes with it
            text = " ".join(args.message)
            if not sys.stdin.isatty():
                text = f"{text}\n\n{sys.stdin.read()}".rstrip()
            code = await run_once(adapter, text, stdout=sys.stdout, **chosen)
        elif interactive:
            code = await run_terminal(adapter, history_file=console.history_path(), log_file=log_file, **chosen)
        else:
            code = await run_chat(adapter, stdin=sys.stdin, stdout=sys.stdout, **chosen)
        # No new answer starts; the one stopped on quitting is written and stored.
        await runtime.service.shutdown(settings.shutdown_grace)
        key = conversation_key(args.user or getpass.getuser(), args.conversation)
        if unanswered := await _leave_unanswered(runtime.store, key):
            print(
                f"{unanswered} message(s) you sent while an answer was written were not answered "
                "(you left first); they stay in the conversation's history.",
                file=sys.stderr,
            )
    finally:
        await runtime.close()
    return int(code)


async def _leave_unanswered(store: Store, key: ConversationKey) -> int:
    """Messages still waiting when the terminal quits are kept as said, never answered
    (a later `bot chat` must not start answering them)."""
    conv = await store.conversation(key, create=False)
    if conv is None:
        return 0
    waiting = [m.id for m in await store.pending(conv.id)]
    await store.set_message_status(waiting, "context")
    return len(waiting)


def _cmd_migrate(_args: argparse.Namespace) -> None:
    settings = _settings(False)
    setup_logging(settings.log_level, settings.secrets(), settings.log_format)
    from bot.store.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date")


def _cmd_usage(args: argparse.Namespace) -> None:
    """Usage per day, user and conversation: a table, CSV or JSON on stdout."""
    from datetime import date

    settings = _settings(False)
    setup_logging("WARNING", settings.secrets())
    from bot.store.db import Database
    from bot.store.migrate import upgrade_async
    from bot.usage.reports import default_range, render_rows, usage_rows

    try:
        since, until = default_range(settings, args.days)
        if args.since:
            since = date.fromisoformat(args.since)
        if args.until:
            until = date.fromisoformat(args.until)
    except ValueError as exc:
        print(f"bad date: {exc} (use YYYY-MM-DD)", file=sys.stderr)
        raise SystemExit(2) from None

    async def main() -> list[dict]:
        await upgrade_async(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await usage_rows(db, since, until, platform=args.platform, user_id=args.user)
        finally:
            await db.dispose()

    rows = asyncio.run(main())
    sys.stdout.write(render_rows(rows, args.format, settings.currency))


def _read_password(from_stdin: bool) -> str:
    import getpass

    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New admin password: ")
    if getpass.getpass("Again: ") != first:
        print("The passwords differ; nothing changed.", file=sys.stderr)
        raise SystemExit(1)
    return first


def _cmd_admin(args: argparse.Namespace) -> None:
    settings = _settings(False)
    setup_logging("WARNING", settings.secrets())
    from bot.admin.auth import AdminAuth, hash_password
    from bot.store.db import Database
    from bot.store.migrate import upgrade_async

    password = _read_password(args.stdin)
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        print(f"Password refused: {exc}.", file=sys.stderr)
        raise SystemExit(1) from None
    if args.admin_command == "hash-password":
        print(hashed)  # for BOT_ADMIN_PASSWORD_HASH
        return

    async def main() -> None:
        await upgrade_async(settings.database_url)
        db = Database(settings.database_url)
        try:
            await AdminAuth(settings, db).set_password(password)
        finally:
            await db.dispose()

    asyncio.run(main())
    print("Admin password set; log in at /admin.")
    if settings.admin_password_hash is not None:
        print("Note: BOT_ADMIN_PASSWORD_HASH is set and wins over the stored password.", file=sys.stderr)


def _print_help(parser: argparse.ArgumentParser) -> None:
    """A command given without its subcommand: what it can do, rather than argparse's
    "required: …" (nothing ran, so the status is 0)."""
    parser.print_help()


def _cmd_check(argv: list[str]) -> int:
    """``bot check``: ``bot.compliance.check_cli`` with the operator's rules and stored brand profiles."""
    settings = _settings(False)
    setup_logging("WARNING", settings.secrets())
    from bot.compliance.brand import BrandError, BrandProfile
    from bot.compliance.check_cli import main as check_main

    def find_brand(key: str) -> BrandProfile | None:
        from pathlib import Path

        from bot.store.brands import BrandStore, Place
        from bot.store.db import Database, is_sqlite

        place = Place.parse(key)
        if place is None:
            return None
        url = settings.database_url
        if is_sqlite(url) and not Path(url.split(":///", 1)[-1]).is_file():  # never create one by looking
            raise BrandError(f"{key}: there is no database at {url.split(':///', 1)[-1]} (set DATABASE_URL)")

        async def read() -> BrandProfile | None:
            db = Database(url)
            try:
                saved = await BrandStore(db).get(place)
            finally:
                await db.dispose()
            return saved.profile if saved is not None else None

        try:
            return asyncio.run(read())
        except Exception as exc:  # noqa: BLE001 - any database failure; its text may hold the URL
            raise BrandError(f"{key}: the database could not be read ({type(exc).__name__})") from None

    return check_main(argv, find_brand=find_brand, rules_dir=settings.compliance_rules_dir)


def _cmd_mcp(args: argparse.Namespace) -> None:
    """``bot mcp list``: connect to every configured MCP server once and show its tools."""
    settings = _settings(False)
    setup_logging("WARNING", settings.secrets())
    if not settings.mcp_config:
        print("BOT_MCP_CONFIG is not set: no MCP servers are configured (see docs/tools.md).", file=sys.stderr)
        raise SystemExit(1)
    from bot.mcp.listing import list_servers, render

    report = asyncio.run(list_servers(settings))
    sys.stdout.write(render(report, args.format))
    if any(server["state"] != "ready" for server in report if not server["disabled"]):
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    from bot.platform.discovery import plugins

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:  # its own options and exit status (0 clean, 1 found, 2 bad usage)
        raise SystemExit(_cmd_check(argv[1:]))

    names = sorted(plugins())
    parser = argparse.ArgumentParser(prog="bot", description="A chat-bot for your team's chats and the terminal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(func=lambda _args: _print_help(parser))
    sub.add_parser("run", help="start every configured platform and the web app on PORT").set_defaults(func=_cmd_run)
    chat = sub.add_parser(
        "chat",
        help="talk to the bot in the terminal (reads lines from stdin when piped)",
        epilog="Exit status: 0 answered, 1 an answer failed, 2 bad arguments or settings, "
        "3 refused (quota, not allowed), 130 interrupted. See docs/terminal.md.",
    )
    chat.add_argument("--user", default=None, help="the conversation's user name (default: your login)")
    chat.add_argument(
        "--conversation",
        metavar="NAME",
        default="",
        help="a conversation of its own under this name (default: your one conversation)",
    )
    chat.add_argument("--new", action="store_true", help="start the conversation over (as /new does)")
    chat.add_argument(
        "message",
        nargs="*",
        help="ask this one question and exit (with text piped in, "
        "that text goes with it: bot chat 'summarise this' < notes.md)",
    )
    chat.set_defaults(func=_cmd_chat)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(func=_cmd_migrate)
    usage = sub.add_parser("usage", help="tokens and cost per day, user and conversation")
    usage.add_argument("--days", type=int, default=30, help="the last N days, today included (default 30)")
    usage.add_argument("--since", help="first day, YYYY-MM-DD (in BOT_TIMEZONE)")
    usage.add_argument("--until", help="last day, YYYY-MM-DD")
    usage.add_argument("--platform", choices=names, help=f"only this platform ({', '.join(names)})")
    usage.add_argument("--user", help="only this platform user id")
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table")
    usage.set_defaults(func=_cmd_usage)
    admin = sub.add_parser("admin", help="the admin web page's password")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="SUBCOMMAND")
    admin.set_defaults(func=lambda _args: _print_help(admin))
    for name, text in (
        ("set-password", "store a new admin password (its Argon2 hash) in the database"),
        ("hash-password", "print the hash of a password, for BOT_ADMIN_PASSWORD_HASH"),
    ):
        cmd = admin_sub.add_parser(name, help=text)
        cmd.add_argument("--stdin", action="store_true", help="read the password from standard input")
        cmd.set_defaults(func=_cmd_admin)
    check = sub.add_parser(
        "check",
        add_help=False,
        help="check copy for advertising-law, platform and brand "
        "problems: bot check [FILE|-] [--style ID] [--brand FILE|CHAT] [--format text|json]",
    )
    check.add_argument("rest", nargs=argparse.REMAINDER)
    check.set_defaults(func=lambda args: sys.exit(_cmd_check(args.rest)))

    mcp = sub.add_parser("mcp", help="tools from MCP servers (BOT_MCP_CONFIG)")
    mcp_sub = mcp.add_subparsers(dest="mcp_command", required=True)
    listing = mcp_sub.add_parser("list", help="connect to each server and show its state and tools")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=_cmd_mcp)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()

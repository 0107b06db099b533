"""``python -m bench.memory_probe``: `bot run` under tracemalloc, for finding where memory goes.

The soak (``python -m bench.soak --probe DIR``) starts the bot through this module; on each
SIGUSR1 it writes a tracemalloc snapshot (``snapN.tm``) and the process's resident figures
and module list (``statusN.txt``) to ``$PROBE_OUT``. Compare two snapshots with
``python -m bench.memory_probe DIR/snap2.tm DIR/snap3.tm``. tracemalloc roughly doubles what
Python allocates and sees nothing of C libraries' own memory: use it for differences only.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FIGURES = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc() -> str:
    """glibc's own account (mallinfo2): ``uordblks`` in use through malloc, ``fordblks`` free
    inside its heap (fragmentation), ``hblkhd`` in mmapped blocks. Python's small objects live
    in pymalloc's own mmapped arenas, outside these."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return ""
    info = libc.mallinfo2()
    return "".join(
        f"malloc {name}: {getattr(info, name) // 1024} kB\n"
        for name in ("arena", "uordblks", "fordblks", "hblkhd", "keepcost")
    )


def _status() -> str:
    with open("/proc/self/status") as f:
        return "".join(line for line in f if line.startswith(FIGURES)) + _malloc()


def _dumper(out: Path):  # type: ignore[no-untyped-def]
    count = 0

    def dump(_signum: int = 0, _frame: FrameType | None = None) -> None:
        nonlocal count
        count += 1
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(out / f"snap{count}.tm"))
            traced = f"traced: {tracemalloc.get_traced_memory()[0] // 1024} kB\n"
        else:
            traced = ""
        (out / f"status{count}.txt").write_text(
            _status() + traced + f"modules {len(sys.modules)}\n" + "\n".join(sorted(sys.modules)) + "\n"
        )

    return dump


def compare(before: str, after: str, top: int = 30) -> str:
    """What grew between two snapshots, by allocating line, largest first."""
    old, new = tracemalloc.Snapshot.load(before), tracemalloc.Snapshot.load(after)
    lines = [str(stat) for stat in new.compare_to(old, "lineno")[:top]]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3:
        print(compare(sys.argv[1], sys.argv[2]))
        return
    frames = int(os.environ.get("PROBE_FRAMES", "1"))
    if frames:  # 0: no tracemalloc, only the process's and malloc's figures
        tracemalloc.start(frames)
    signal.signal(signal.SIGUSR1, _dumper(Path(os.environ["PROBE_OUT"])))
    sys.argv = ["bot", "run"]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

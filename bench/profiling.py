"""Sampling profiles of the running servers with py-spy (`make bench ARGS=--py-spy`).

py-spy attaches to a process tree from outside (the gunicorn master and its workers, the
Celery worker and its prefork children), samples the stacks of the threads that are on
a CPU, and changes nothing in the code it watches: the servers are the production ones,
under the benchmark's own load. Each recording is written in the collapsed-stack format
(`bench/results/profile-<name>.txt`: one `frame;frame;... count` line per stack, which
speedscope.app and flamegraph.pl read) and summed up here: the share of samples whose
innermost frame is in each library, the functions with the most samples of their own,
and our functions with the most samples in all (themselves and what they call).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The product's own code, by top-level directory; anything else is named by its library.
OURS = ("patients", "programs", "rehab", "config", "bench")
RATE = 250  # samples a second per process
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy executable beside this Python, or on PATH (None: not installed)."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def recording(name: str, pid: int, results: Path) -> Iterator[Path]:
    """Sample process `pid` and its subprocesses while the block runs."""
    executable = py_spy()
    if executable is None:
        raise SystemExit("--py-spy needs py-spy (pip install -r requirements-dev.txt)")
    output = results / f"profile-{name}.txt"
    output.unlink(missing_ok=True)
    log = (results / f"profile-{name}.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own fixed command line
        [executable, "record", "--pid", str(pid), "--subprocesses", "--function",
         "--gil", "--rate", str(RATE), "--format", "raw", "--output", str(output)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    time.sleep(1.0)  # attaching to every process of the tree takes a moment
    try:
        yield output
    finally:
        # py-spy writes its file when interrupted, as after Ctrl-C.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@dataclass
class Frame:
    function: str
    where: str  # the file: "rehab/services/logs.py", "django/db/models/base.py"

    def label(self) -> str:
        return f"{self.function} ({self.where})"


def parse_frame(text: str) -> Frame:
    """`function (file:line)`, the file as py-spy names it: relative to the `sys.path`
    entry it was imported from (`django/db/models/base.py`, `rehab/services/logs.py`,
    `json/encoder.py`)."""
    match = FRAME.match(text)
    if match is None:  # "process 123:\"...\"" roots and anything unexpected
        return Frame(text, "")
    return Frame(match["function"], match["file"])


def library(frame: Frame) -> str:
    """The package a frame's file belongs to (`django`, `psycopg`, `json`), ours marked."""
    top = frame.where.split("/", 1)[0].removesuffix(".py")
    return f"ours: {top}" if top in OURS else top


@dataclass
class Summary:
    samples: int = 0
    by_library: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)

    def as_dict(self, top: int = 15) -> dict[str, Any]:
        def share(counter: Counter[str], n: int | None) -> list[list[Any]]:
            return [
                [key, round(100 * count / max(self.samples, 1), 1)]
                for key, count in counter.most_common(n)
            ]

        return {
            "samples": self.samples,
            "by_library_pct": share(self.by_library, None),
            "top_own_pct": share(self.own, top),
            "top_total_pct": share(self.total, top),
        }


def summarise(path: Path) -> Summary:
    """Sum a collapsed-stack file: every sample's innermost frame counts as its own time
    and as its library's; every distinct frame of ours on the stack towards its total."""
    summary = Summary()
    if not path.exists():
        return summary
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [parse_frame(text) for text in stack.split(";")]
        frames = [frame for frame in frames if frame.where]  # drop "process ..." roots
        if not frames:
            continue
        summary.samples += count
        innermost = frames[-1]
        summary.by_library[library(innermost)] += count
        summary.own[innermost.label()] += count
        # In all, our functions only: the servers' and frameworks' outer frames are on
        # every stack and would fill the list.
        for label in {frame.label() for frame in frames if library(frame).startswith("ours")}:
            summary.total[label] += count
    return summary


def print_summary(name: str, summary: dict[str, Any], *, top: int = 12) -> None:
    print(f"\npy-spy {name}: {summary['samples']} samples on a CPU")
    libraries = ", ".join(f"{lib} {pct}%" for lib, pct in summary["by_library_pct"][:10])
    print(f"  innermost frame by library: {libraries}")
    print("  own samples:")
    for label, pct in summary["top_own_pct"][:top]:
        print(f"    {pct:5.1f}%  {label}")
    print("  our functions, in all:")
    for label, pct in summary["top_total_pct"][:top]:
        print(f"    {pct:5.1f}%  {label}")

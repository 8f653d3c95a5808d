"""The benchmark's py-spy profiles (bench/profiling.py): a real recording, and its sums."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench import profiling


def test_a_collapsed_stack_file_is_summed_by_own_time_total_time_and_library(
    tmp_path: Path,
) -> None:
    out = tmp_path / "profile.txt"
    out.write_text(
        textwrap.dedent(
            """\
            process 1:"gunicorn";process 3:"gunicorn";<module> (gunicorn:1);handle (gunicorn/workers/sync.py:130);post (rehab/views/logs.py:189);execute (psycopg/cursor.py:100) 6
            process 1:"gunicorn";process 3:"gunicorn";<module> (gunicorn:1);handle (gunicorn/workers/sync.py:130);post (rehab/views/logs.py:189) 3
            process 1:"gunicorn";process 2:"gunicorn";<module> (gunicorn:1);handle (gunicorn/workers/sync.py:130);uuid4 (uuid.py:721) 1
            not a stack line
            """  # noqa: E501
        )
    )

    summary = profiling.summarise(out).as_dict()

    assert summary["samples"] == 10
    assert summary["by_library_pct"] == [
        ["psycopg", 60.0],
        ["ours: rehab", 30.0],
        ["uuid", 10.0],
    ]
    assert summary["top_own_pct"][0] == ["execute (psycopg/cursor.py)", 60.0]
    # In all: our functions only (the server's frames are on every stack).
    assert summary["top_total_pct"] == [["post (rehab/views/logs.py)", 90.0]]


def test_a_missing_recording_sums_to_nothing(tmp_path: Path) -> None:
    assert profiling.summarise(tmp_path / "none.txt").as_dict()["samples"] == 0


# It counts the samples taken in 1.5 s of wall-clock time: not beside the rest of a
# parallel run, whose load would starve the profiler.
@pytest.mark.alone
@pytest.mark.skipif(profiling.py_spy() is None, reason="py-spy is in requirements-dev.txt")
def test_py_spy_records_the_functions_a_running_process_spends_its_cpu_in(
    tmp_path: Path,
) -> None:
    script = tmp_path / "spin.py"
    script.write_text(
        textwrap.dedent(
            """\
            import time

            def spin_for_the_profiler():
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    sum(range(1000))

            spin_for_the_profiler()
            """
        )
    )
    spinner = subprocess.Popen([sys.executable, str(script)])
    try:
        with profiling.recording("spin", spinner.pid, tmp_path) as output:
            time.sleep(1.5)
    finally:
        spinner.kill()
        spinner.wait()
    log = (tmp_path / "profile-spin.log").read_text()
    if "Permission denied" in log or "Operation not permitted" in log:
        pytest.skip(f"this kernel does not let py-spy attach: {log.strip()[:200]}")

    summary = profiling.summarise(output).as_dict()

    assert summary["samples"] > 50, log
    # py-spy names the file relative to the script's directory (its sys.path entry).
    assert summary["top_own_pct"][0][0] == "spin_for_the_profiler (spin.py)", summary
    assert summary["top_own_pct"][0][1] > 90, summary

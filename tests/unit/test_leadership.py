"""The embedded default's leadership: an exclusive lock on a file, freed with its process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from automation.adapters.leadership import FileLeadership

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_one_holder_at_a_time_and_the_lock_passes_on_release(tmp_path: Path) -> None:
    path = tmp_path / "relay.lock"
    first, second = FileLeadership(path, "relay"), FileLeadership(path, "relay")
    assert first.is_leader()
    assert first.is_leader()  # asking again keeps it
    assert not second.is_leader()
    first.release()
    assert second.is_leader()
    assert not first.is_leader()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "relay.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        standby = FileLeadership(path, "relay")
        assert not standby.is_leader()
        holder.kill()
        holder.wait(10)
        assert standby.is_leader()
    finally:
        holder.kill()
        holder.wait(10)

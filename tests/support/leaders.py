"""Which OS process leads a role: the one whose PostgreSQL session holds the role's
advisory lock (see ``automation.adapters.leadership``).

PostgreSQL knows the lock's session and that session's client port; the kernel knows which
process owns the socket bound to that port (``/proc``), so no log line has to be trusted.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from automation.adapters.sql import advisory_lock_key


def _holder_ports(url: str, schema: str, role: str) -> set[int]:
    key = advisory_lock_key(schema, f"leader of {role}") & 0xFFFFFFFFFFFFFFFF
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            # A bigint advisory key shows as its high half (classid) and low half (objid).
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return {int(port) for (port,) in rows if port is not None}


def _socket_inodes(ports: set[int]) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) in ports:
                inodes.add(fields[9])
    return inodes


def _owns(pid: int, inodes: set[str]) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        links = {os.readlink(fd) for fd in fds.iterdir()}
    except (FileNotFoundError, PermissionError):
        return False
    return any(f"socket:[{inode}]" in links for inode in inodes)


def leader_among(url: str, schema: str, role: str, pids: list[int]) -> int | None:
    """The pid among ``pids`` that leads ``role`` in ``schema``; None while none does."""
    inodes = _socket_inodes(_holder_ports(url, schema, role))
    owners = [pid for pid in pids if inodes and _owns(pid, inodes)]
    assert len(owners) <= 1, f"two processes lead the {role} role: {owners}"
    return owners[0] if owners else None

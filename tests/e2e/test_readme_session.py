"""The README's first session, pasted as written into a fresh shell beside a running
``automation serve``: it must create an account, a site and keywords and see a run end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def first_session() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- first-session -->\n```sh\n(.*?)```", readme, re.S)
    assert found, "the README's first session is marked <!-- first-session -->"
    return found.group(1)


def test_the_readmes_first_session_runs_as_written(tmp_path: Path) -> None:
    # A fresh shell: no virtualenv on the PATH, no service variables; the checkout's
    # .venv is where the README's first line expects it.
    venv = Path(sys.prefix)
    (tmp_path / ".venv").symlink_to(venv)
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(venv))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATION_", "VIRTUAL_"))}
    env |= {"PATH": path, "AUTOMATION_AI_PROVIDER": "local"}
    env.pop("DATABASE_URL", None)
    env.pop("AMQP_URL", None)
    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "automation"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        session = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", first_session()],
            cwd=tmp_path,
            env=env | {"AUTOMATION_URL": url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert session.returncode == 0, session.stderr
        assert '"sufficient":true' in session.stdout, session.stdout
        assert "completed" in session.stdout
        assert "using SQLite in" in session.stderr  # the admin command names its store
    finally:
        server.terminate()
        server.wait(timeout=60)

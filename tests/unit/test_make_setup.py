"""The two scripts `make test` and `make demo` set up with: system_packages.sh (installs what is missing, or says
what to install) and offline.sh (runs the tests that need no stack with the network cut)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[2] / "infra" / "local"
NOBODY = [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
OWN_NETWORK = "import os; print(os.readlink('/proc/self/ns/net'))"
# A server on 127.0.0.1 answers (unit tests start some); a route out there is none.
LOOPBACK_ONLY = """
import errno, os, socket
server = socket.create_server(("127.0.0.1", 0))
socket.create_connection(server.getsockname(), timeout=5).close()
try:
    socket.create_connection(("192.0.2.1", 9), timeout=5)  # TEST-NET-1: routed nowhere, never answers
except OSError as exc:
    print(os.readlink("/proc/self/ns/net"), errno.errorcode.get(exc.errno, exc))
"""


def run(command: list[str], path: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, env={"PATH": path}, capture_output=True, text=True, timeout=60)


def test_a_user_who_cannot_install_is_told_what_to_install_and_make_stops():
    """No gcloud, Java or npm on PATH, and no sudo: nothing is installed, the apt-get line to run is said."""
    as_nobody = NOBODY if os.geteuid() == 0 else []  # as root it would install; as nobody it must refuse
    done = run([*as_nobody, "/bin/bash", str(LOCAL / "system_packages.sh")], path="/nonexistent")
    assert done.returncode == 1, done
    assert done.stdout == ""  # it claims to install nothing
    assert "not root, no password-less sudo" in done.stderr
    assert "sudo apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator " \
           "google-cloud-cli-firestore-emulator default-jre-headless nodejs npm" in done.stderr
    assert "Google's apt repository" in done.stderr


def test_offline_runs_the_command_in_a_network_of_its_own_with_only_its_loopback():
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0 and \
            subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("no network namespace can be made here (the fallback is tested below)")
    done = run([str(LOCAL / "offline.sh"), sys.executable, "-c", LOOPBACK_ONLY], path=os.environ["PATH"])
    assert done.returncode == 0 and done.stderr == "", done
    network, refusal = done.stdout.split()
    assert network != os.readlink("/proc/self/ns/net")
    assert refusal == "ENETUNREACH"


def test_offline_without_unshare_says_so_and_runs_the_command_with_the_network(tmp_path):
    (tmp_path / "python").symlink_to(sys.executable)
    (tmp_path / "bash").symlink_to(shutil.which("bash"))
    done = run([str(LOCAL / "offline.sh"), "python", "-c", OWN_NETWORK], path=str(tmp_path))
    assert done.returncode == 0, done
    assert done.stdout.strip() == os.readlink("/proc/self/ns/net")
    assert "cannot cut the network here" in done.stderr and "running with the network" in done.stderr

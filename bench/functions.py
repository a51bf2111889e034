"""Each Cloud Function's import time, idle memory and dependency size; prints a table.

    python -m bench.functions [--repeat 3] [--tree PATH]

For every functions/<name>/main.py of the tree (default: this checkout):

- import: the entry point imported in a fresh interpreter (`python -I`, a dummy
  GOOGLE_CLOUD_PROJECT and DATA_BUCKET; nothing connects), best of --repeat;
  the RSS of that interpreter right after, and the third-party packages loaded;
- serving: `functions-framework --target=<entry point>` on a free port, polled
  until the framework itself answers GET /favicon.ico (404 or 405: the
  function never runs), then VmRSS of the gunicorn master and of its worker,
  and their total: the master's RSS plus the worker's private pages (the
  worker is forked from the loaded master and shares the rest; PSS would
  split shared libraries with every other Python on the machine);
- deps: the installed size of the function's requirements.txt and everything
  it pulls in (a tree without functions/<name>/requirements.txt, as before the
  split, deploys the top-level requirements.txt).

Measure an older commit with `git archive <commit> | tar -x -C /tmp/old` and
`--tree /tmp/old` (the environment is this venv's).
"""
from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DUMMY_ENV = {"GOOGLE_CLOUD_PROJECT": "bench-functions", "DATA_BUCKET": "bench-functions",
             "API_TOKEN": "bench-functions"}
READY_SECONDS = 60
NOTABLE = ("PIL", "yaml", "flask", "grpc", "torch", "ultralytics", "onnxruntime")
IMPORT_PROBE = """
import importlib.util, json, sys, time
tree, main = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree)
started = time.perf_counter()
if main:
    spec = importlib.util.spec_from_file_location("main", main)
    module = sys.modules["main"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
seconds = time.perf_counter() - started
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
ours = {"main", "__main__", "common"}
loaded = sorted({name.partition(".")[0] for name in sys.modules} - set(sys.stdlib_module_names) - ours)
print(json.dumps({"seconds": seconds, "rss_kib": rss, "loaded": loaded}))
"""


@dataclass
class Row:
    name: str
    import_seconds: float
    import_rss_mib: float
    loaded: list[str]
    master_mib: float | None = None
    worker_mib: float | None = None
    total_mib: float | None = None
    deps_mib: float | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="imports per function; the best is kept")
    parser.add_argument("--tree", type=Path, default=REPO, help="a source tree with functions/ and common/")
    args = parser.parse_args()
    tree = args.tree.resolve()
    rows = [measure_import(tree, None, "(interpreter alone)", args.repeat)]
    for main_py in sorted(tree.glob("functions/*/main.py")):
        rows.append(measure_function(tree, main_py, args.repeat))
    print_table(tree, rows)


def measure_function(tree: Path, main_py: Path, repeat: int) -> Row:
    row = measure_import(tree, main_py, main_py.parent.name, repeat)
    if entry_point(main_py):
        row.master_mib, row.worker_mib, row.total_mib = measure_serving(tree, main_py)
    row.deps_mib = installed_mib(requirements_of(tree, main_py.parent.name))
    return row


# ---- import time and memory ------------------------------------------------------------

def measure_import(tree: Path, main_py: Path | None, name: str, repeat: int) -> Row:
    runs = [probe_import(tree, main_py) for _ in range(repeat)]
    best = min(runs, key=lambda run: run["seconds"])
    return Row(name, best["seconds"], min(run["rss_kib"] for run in runs) / 1024, best["loaded"])


def probe_import(tree: Path, main_py: Path | None) -> dict:
    done = subprocess.run([sys.executable, "-I", "-c", IMPORT_PROBE, str(tree), str(main_py or "")],
                          env=function_env(tree), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise SystemExit(f"importing {main_py} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def function_env(tree: Path) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if not key.endswith("_EMULATOR_HOST")}
    return {**inherited, **DUMMY_ENV, "PYTHONPATH": str(tree)}


# ---- memory while serving --------------------------------------------------------------

def measure_serving(tree: Path, main_py: Path) -> tuple[float, float | None, float]:
    port = free_port()
    framework = Path(sys.executable).parent / "functions-framework"
    process = subprocess.Popen([str(framework), f"--source={main_py}", f"--target={entry_point(main_py)}",
                                "--host=127.0.0.1", f"--port={port}"],
                               cwd=tree, env=function_env(tree), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_framework_answers(process, port)
        workers = children(process.pid)
        master = rss_mib(process.pid)
        worker = rss_mib(workers[0]) if workers else None
        return master, worker, master + sum(private_mib(pid) for pid in workers)
    finally:
        stop(process)


def entry_point(main_py: Path) -> str | None:
    """The function decorated with functions_framework.http or .cloud_event; None for a worker."""
    tree = ast.parse(main_py.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Attribute) and d.attr in ("http", "cloud_event") for d in node.decorator_list):
            return node.name
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_framework_answers(process: subprocess.Popen, port: int) -> None:
    """GET /favicon.ico is answered by functions-framework itself (404 for HTTP
    functions, 405 for event functions): the function under test never runs."""
    deadline = time.monotonic() + READY_SECONDS
    delay = 0.05
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"functions-framework exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/favicon.ico", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(delay)  # polling interval, not a wait for an outcome
            delay = min(delay * 2, 0.5)
    raise SystemExit(f"functions-framework did not answer on port {port} within {READY_SECONDS}s")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def rss_mib(pid: int) -> float:
    return proc_kib(f"/proc/{pid}/status", "VmRSS:") / 1024


def private_mib(pid: int) -> float:
    rollup = f"/proc/{pid}/smaps_rollup"
    return (proc_kib(rollup, "Private_Clean:") + proc_kib(rollup, "Private_Dirty:")) / 1024


def proc_kib(path: str, field: str) -> int:
    return next(int(line.split()[1]) for line in Path(path).read_text().splitlines() if line.startswith(field))


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # its own session: the master and its worker
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ---- dependency size -------------------------------------------------------------------

def requirements_of(tree: Path, function: str) -> Path:
    own = tree / "functions" / function / "requirements.txt"
    return own if own.exists() else tree / "requirements.txt"


def installed_mib(requirements: Path) -> float:
    """Installed size of what the file pins and everything those pull in."""
    seen: set[str] = set()
    pending = [Requirement(line) for line in requirement_lines(requirements)]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        pending.extend(Requirement(text) for text in importlib.metadata.requires(name) or [])
    return sum(distribution_bytes(name) for name in seen) / 2**20


def requirement_lines(requirements: Path) -> list[str]:
    lines = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            lines += requirement_lines(requirements.parent / line[3:].strip())
        elif line:
            lines.append(line)
    return lines


def distribution_bytes(name: str) -> int:
    files = importlib.metadata.distribution(name).files or []
    return sum(path.stat().st_size for path in (Path(file.locate()) for file in files) if path.is_file())


# ---- the table -------------------------------------------------------------------------

def print_table(tree: Path, rows: list[Row]) -> None:
    print(f"tree: {tree}  python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'function':<20} {'import s':>8} {'RSS MiB':>8} {'serving: master':>15} {'worker':>7} "
          f"{'total':>7} {'deps MiB':>8}  packages loaded (of note)")
    for row in rows:
        notable = [name for name in NOTABLE if name in row.loaded]
        print(f"{row.name:<20} {row.import_seconds:>8.3f} {row.import_rss_mib:>8.1f} {fmt(row.master_mib):>15} "
              f"{fmt(row.worker_mib):>7} {fmt(row.total_mib):>7} {fmt(row.deps_mib):>8}  "
              f"{len(row.loaded)} ({', '.join(notable) or '-'})")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()

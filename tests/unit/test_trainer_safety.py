"""The trainer loads weights only through Ultralytics' safe loader and never pip-installs, however it
is started: its image, the local launcher and its own package each set the switches."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.cloud import launcher

REPO = Path(__file__).resolve().parents[2]
SAFE = {"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_AUTOINSTALL": "false"}
# Ultralytics reads both once, at its import; printed as it saw them.
PROBE = """
import jobs.trainer
from ultralytics.utils import AUTOINSTALL, SAFE_LOAD
print("SAFE", SAFE_LOAD, "AUTOINSTALL", AUTOINSTALL)
"""


def test_the_image_runs_unprivileged_with_safe_loading():
    dockerfile = (REPO / "jobs" / "trainer" / "Dockerfile").read_text()
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    users = [line for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("USER root", "USER 0"), "the trainer runs as root"
    assert instructions.index(users[-1]) < instructions.index('CMD ["python", "-m", "jobs.trainer"]')
    for name, value in SAFE.items():
        assert f"{name}={value}" in dockerfile, f"the image does not set {name}={value}"


def test_the_local_launcher_sets_the_switches():
    assert launcher.TRAINER_SAFETY_ENV == SAFE


def test_importing_the_trainer_turns_safe_loading_on_before_ultralytics_reads_it(tmp_path):
    """Even started by hand with the switches off, the trainer's package turns them on first."""
    env = {**os.environ, "ULTRALYTICS_SAFE_LOAD": "0", "YOLO_AUTOINSTALL": "true", "YOLO_OFFLINE": "1",
           "YOLO_CONFIG_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    probed = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env,
                            cwd=REPO)
    assert probed.returncode == 0, probed.stderr[-2000:]
    assert "SAFE True AUTOINSTALL False" in probed.stdout.splitlines(), probed.stdout[-2000:]


def test_a_base_model_loads_only_with_its_pinned_sha256(tmp_path):
    import hashlib

    import pytest

    from jobs.trainer.main import UnsafeWeights, check_pin
    weights = tmp_path / "yolo11n.pt"
    weights.write_bytes(b"the trusted file")
    check_pin(weights, "yolo11n.pt", hashlib.sha256(b"the trusted file").hexdigest(), "the cached file")
    with pytest.raises(UnsafeWeights, match="the cached file for yolo11n.pt has SHA-256 .*, not its pin 0{64}"):
        check_pin(weights, "yolo11n.pt", "0" * 64, "the cached file")
    with pytest.raises(UnsafeWeights, match="the manifest pins no SHA-256 for yolo11n.pt"):
        check_pin(weights, "yolo11n.pt", None, "the cached file")

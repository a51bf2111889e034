"""The trainer with its ONNX export made to fail: a test hook, not a production path.

    JOB_ID=... MANIFEST_URI=... python -m tests.integration.export_drill

runs exactly what `python -m jobs.trainer` runs, except that the export raises,
as an exporter that breaks on some model or version would. The job must still
complete and register its model with the .pt and the error.
"""
from __future__ import annotations

import sys
from pathlib import Path

from common.cloud import launcher
from common.cloud.runner import LocalRunner
from jobs.trainer import main as trainer

MODULE = "tests.integration.export_drill"


def failing_export(weights: Path, imgsz: int) -> str:
    raise RuntimeError("export failure drill: the exporter broke")


def drill_launcher(log_dir: Path) -> LocalRunner:
    return launcher.local(log_dir, MODULE)


if __name__ == "__main__":
    trainer.export = failing_export
    sys.exit(trainer.main(trainer.Config.from_env()))

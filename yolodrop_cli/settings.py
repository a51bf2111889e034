"""Where the command line finds the API and its key, first match wins:

1. --api-url / --api-key (and --predict-url);
2. YOLODROP_API_URL / YOLODROP_API_KEY (YOLODROP_PREDICT_URL);
3. .local/stack.env of a local stack started with `make up`, in this folder or
   one above it (API_URL, API_TOKEN, PREDICT_URL, and the storage emulator);
4. what `yolodrop login` stored in the user's config folder (mode 0600).
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

STACK_ENV = Path(".local") / "stack.env"
CONFIG_FILE = "config.json"
# Variables of a local stack's env file that the storage client needs to download exports.
STORAGE_VARIABLES = ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")


class NotConfigured(click.UsageError):
    """No API URL or key: a usage error (exit 2) saying how to set one."""


@dataclass(frozen=True)
class Settings:
    api_url: str
    api_key: str
    predict_url: str
    source: str  # where they came from, for `yolodrop whoami` and error messages


def config_path() -> Path:
    return Path(click.get_app_dir("yolodrop")) / CONFIG_FILE


def resolve(api_url: str | None, api_key: str | None, predict_url: str | None,
            environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    candidates = [
        ("options", {"api_url": api_url, "api_key": api_key, "predict_url": predict_url}),
        ("environment", {"api_url": environ.get("YOLODROP_API_URL"), "api_key": environ.get("YOLODROP_API_KEY"),
                         "predict_url": environ.get("YOLODROP_PREDICT_URL")}),
        *_stack_settings(cwd or Path.cwd()),
        (str(config_path()), _stored()),
    ]
    chosen = {}
    for source, values in candidates:
        for key, value in values.items():
            if value and key not in chosen:
                chosen[key] = (value, source)
    if "api_url" not in chosen or "api_key" not in chosen:
        raise NotConfigured("no API configured: run `yolodrop login --api-url URL`, set YOLODROP_API_URL and "
                            "YOLODROP_API_KEY, or run next to a local stack started with `make up`")
    url = chosen["api_url"][0].rstrip("/")
    predict = chosen.get("predict_url", (url, ""))[0].rstrip("/")
    return Settings(url, chosen["api_key"][0], predict, chosen["api_url"][1])


def find_stack_env(cwd: Path) -> Path | None:
    for folder in (cwd, *cwd.parents):
        if (folder / STACK_ENV).is_file():
            return folder / STACK_ENV
    return None


def read_env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _stack_settings(cwd: Path) -> list[tuple[str, dict]]:
    path = find_stack_env(cwd)
    if path is None:
        return []
    env = read_env_file(path)
    for name in STORAGE_VARIABLES:  # so that exports download from the stack's storage emulator
        if name in env:
            os.environ.setdefault(name, env[name])
    return [(str(path), {"api_url": env.get("API_URL"), "api_key": env.get("API_TOKEN"),
                         "predict_url": env.get("PREDICT_URL")})]


def _stored() -> dict:
    path = config_path()
    if not path.is_file():
        return {}
    stored = json.loads(path.read_text())
    return {key: stored.get(key) for key in ("api_url", "api_key", "predict_url")}


def store(api_url: str, api_key: str, predict_url: str | None) -> Path:
    """Write the login, readable by its owner only (0600 from the moment it exists)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"api_url": api_url, "api_key": api_key, "predict_url": predict_url}, out)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC
    return path

"""docs/configuration.md is what infra.docs.configuration writes from common/platform/config.py now, and that
script lists every variable or stops saying what it cannot read."""
from __future__ import annotations

import pytest

from infra.docs import configuration


def test_the_configuration_reference_is_what_the_script_writes_now():
    assert configuration.OUTPUT.read_text() == configuration.render(configuration.CONFIG.read_text()), \
        "docs/configuration.md is out of date: run python -m infra.docs.configuration"


def test_every_variable_config_reads_has_a_row():
    source = configuration.CONFIG.read_text()
    listed = {variable.name for variable in configuration.variables(source)}
    quoted = {token.strip("\"'") for token in source.replace("(", " ").replace(",", " ").split()
              if token.startswith('"') and token.strip("\"'").isupper() and "_" in token}
    read_by_name = {name for name in quoted if f'"{name}"' in source and name not in listed}
    assert listed >= {"GOOGLE_CLOUD_PROJECT", "PAGE_TOKEN_SECRET", "PREDICT_RATE_LIMIT", "RATE_LIMIT_DATASETS",
                      "API_KEY_MAX_DAYS", "QUOTA_STORED_BYTES"}
    assert not read_by_name, f"config.py names variables the reference misses: {sorted(read_by_name)}"


def test_a_variable_is_listed_with_its_default_required_or_unset():
    source = '''
import os
LIMIT = 7
def size() -> int:
    """Bytes at most."""
    return int(os.environ.get("THING_BYTES", str(3 * 1024 ** 2)))
def secret() -> str:
    """The secret."""
    return os.environ["THING_SECRET"]
def knob() -> str | None:
    """A knob."""
    return os.environ.get("THING_KNOB") or None
def count() -> int:
    """How many."""
    return int(os.environ.get("THING_COUNT", LIMIT))
'''
    rows = {v.name: (v.default, v.function, v.meaning) for v in configuration.variables(source)}
    assert rows == {"THING_BYTES": ("3 MiB", "size", "Bytes at most."),
                    "THING_SECRET": ("required", "secret", "The secret."),
                    "THING_KNOB": ("unset", "knob", "A knob."),
                    "THING_COUNT": ("`7`", "count", "How many.")}


@pytest.mark.parametrize("body, refusal", [
    ('def f():\n    return os.environ.get("UNDOCUMENTED", "1")\n', "no docstring"),
    ('def f():\n    """Doc."""\n    return os.environ.get(NAME)\n', "name is computed"),
    ('def f():\n    """Doc."""\n    return os.environ.get("X", compute())\n', "cannot work out"),
])
def test_a_read_the_script_cannot_describe_stops_it(body, refusal):
    with pytest.raises(configuration.NotUnderstood, match=refusal):
        configuration.variables("import os\n" + body)

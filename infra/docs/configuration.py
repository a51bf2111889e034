"""docs/configuration.md, written from common/platform/config.py: every environment variable it reads, its
default and what it does (the reading function's docstring).

    python -m infra.docs.configuration           # write docs/configuration.md
    python -m infra.docs.configuration --check   # exit 1 when docs/configuration.md is not what it would write

The module is read with ast, never imported, so no environment is needed. A read this script does not
understand (a variable name it cannot see, a default it cannot work out) or a variable whose function has no
docstring stops it with the place to fix: the reference cannot quietly miss one.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "common" / "platform" / "config.py"
OUTPUT = REPO / "docs" / "configuration.md"
# Functions that read a variable under a name computed at run time, and where the names they read come from.
DYNAMIC_READS = {"api_secrets_problem": "checks API_TOKEN and PAGE_TOKEN_SECRET, each read by its own function",
                 "rate_limit_of": "RATE_LIMIT_KINDS and RATE_LIMIT_VARIABLES: one row per kind",
                 "_int": "the helper's callers, each listed with the variable it passes"}
MIB, GIB = 1024 ** 2, 1024 ** 3

HEADER = """# Configuration reference

<!-- Written by `python -m infra.docs.configuration` from common/platform/config.py; do not edit by hand:
change a docstring or a default there and run it again (tests/unit/test_configuration_doc.py fails until then). -->

Every environment variable `common/platform/config.py` reads, in its order. A required variable (default
"required") fails with a `KeyError` naming it the first time a function needs it; the others fall back to
their default. `infra/settings.json` gives each deployed function its values (Terraform and the local stack
read it: [operations.md](operations.md)); the local stack's own values are in [local-stack.md](local-stack.md).

Read elsewhere, and listed here only where config.py reads them too: the emulator switches
`STORAGE_EMULATOR_HOST`, `PUBSUB_EMULATOR_HOST`, `FIRESTORE_EMULATOR_HOST` and `FIREBASE_AUTH_EMULATOR_HOST`
(the client libraries and firebase-admin read them: set them and the same code runs on the emulators);
`INGEST_STATUS_PORT`, where the local stack has an ingest instance answer its counters
(`common/platform/group_commit.py`); the trainer's own
variables ([local-stack.md](local-stack.md#configuration)).

| variable | default | read by | what it does |
|---|---|---|---|
"""


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    function: str
    meaning: str


class NotUnderstood(ValueError):
    pass


def variables(source: str) -> list[Variable]:
    """Every variable the module reads, first reader first."""
    tree = ast.parse(source)
    constants = _module_constants(tree)
    found: dict[str, Variable] = {}
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        for name, default in _reads(function, constants):
            meaning = _docstring(function, name)
            found.setdefault(name, Variable(name, default, function.name, meaning))
        if function.name == "rate_limit_of":
            for variable in _rate_limit_kinds(constants, function):
                found.setdefault(variable.name, variable)
    return list(found.values())


def render(source: str) -> str:
    rows = [f"| `{v.name}` | {v.default} | `{v.function}()` | {v.meaning} |" for v in variables(source)]
    return HEADER + "\n".join(rows) + "\n"


def _module_constants(tree: ast.Module) -> dict[str, object]:
    constants: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                constants.update({t.id: ast.literal_eval(node.value) for t in node.targets})  # type: ignore[attr-defined]
            except ValueError:
                pass  # not a literal (e.g. a tuple of names): no variable reads one
    return constants


def _reads(function: ast.FunctionDef, constants: dict[str, object]) -> list[tuple[str, str]]:
    reads = []
    for node in ast.walk(function):
        read = _read_of(node)
        if read is None:
            continue
        name_node, default_node = read
        if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
            if function.name in DYNAMIC_READS:
                continue
            where = f"config.py:{getattr(node, 'lineno', '?')}"
            raise NotUnderstood(f"{where}: {function.name}() reads a variable whose name is computed; "
                                f"add it to DYNAMIC_READS in {Path(__file__).name} with where its names come from")
        reads.append((name_node.value, _default(name_node.value, default_node, constants, node)))
    return reads


def _read_of(node: ast.AST) -> tuple[ast.expr, ast.expr | str] | None:
    """(name, default) of os.environ[name] (default "required"), os.environ.get(name[, default]) ("unset"
    without one) or _int(name, default); None for anything else."""
    if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
        return node.slice, "required"
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value):
            return node.args[0], node.args[1] if len(node.args) > 1 else "unset"
        if isinstance(func, ast.Name) and func.id == "_int":
            return node.args[0], node.args[1]
    return None


def _is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) \
        and node.value.id == "os"


def _default(name: str, node: ast.expr | str, constants: dict[str, object], at: ast.AST) -> str:
    if isinstance(node, str):
        return node
    value = _evaluate(node, constants, at)
    if value == "":
        return "empty"
    if isinstance(value, int) and "BYTES" in name and value % MIB == 0 and value >= MIB:
        return f"{value // GIB} GiB" if value % GIB == 0 else f"{value // MIB} MiB"
    return f"`{value}`"


def _evaluate(node: ast.expr, constants: dict[str, object], at: ast.AST) -> object:
    """A default: a literal, a module constant, str() of one, or arithmetic on numbers."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str" and len(node.args) == 1:
        return _evaluate(node.args[0], constants, at)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Pow, ast.Add)):
        left, right = _evaluate(node.left, constants, at), _evaluate(node.right, constants, at)
        if isinstance(left, int) and isinstance(right, int):
            return left * right if isinstance(node.op, ast.Mult) else left ** right if isinstance(node.op, ast.Pow) \
                else left + right
    raise NotUnderstood(f"config.py:{getattr(at, 'lineno', '?')}: a default this script cannot work out "
                        f"({ast.unparse(node)}): teach _evaluate in {Path(__file__).name} or write it plainly")


def _docstring(function: ast.FunctionDef, name: str) -> str:
    text = ast.get_docstring(function)
    if not text:
        raise NotUnderstood(f"config.py:{function.lineno}: {function.name}() reads {name} and has no docstring "
                            f"saying what it does: give it one")
    return " ".join(text.split()).replace("|", "\\|")


def _rate_limit_kinds(constants: dict[str, object], function: ast.FunctionDef) -> list[Variable]:
    kinds = constants["RATE_LIMIT_KINDS"]
    named = constants["RATE_LIMIT_VARIABLES"]
    assert isinstance(kinds, dict) and isinstance(named, dict)
    any_kind = Variable("RATE_LIMIT_<KIND>", "`RATE_LIMIT_REQUESTS/RATE_LIMIT_SECONDS`", function.name,
                        _docstring(function, "RATE_LIMIT_<KIND>") + " A kind is a route's `rate_limited` "
                        "(common/api/resources); those with defaults of their own follow.")
    per_kind = [Variable(named.get(kind, f"RATE_LIMIT_{kind.upper()}"), f"`{requests}/{seconds}`", function.name,
                         f"`requests/seconds` one person may make of {kind} requests per window (a 429 beyond); "
                         f"everyone together RATE_LIMIT_GLOBAL_FACTOR times that")
                for kind, (requests, seconds) in kinds.items()]
    return [any_kind, *per_kind]


def main(argv: list[str]) -> int:
    written = render(CONFIG.read_text())
    if "--check" in argv:
        if OUTPUT.exists() and OUTPUT.read_text() == written:
            return 0
        print(f"{OUTPUT.relative_to(REPO)} is out of date: run python -m infra.docs.configuration", file=sys.stderr)
        return 1
    OUTPUT.write_text(written)
    print(f"wrote {OUTPUT.relative_to(REPO)} ({len(variables(CONFIG.read_text()))} variables)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The layers and each function's dependencies, checked by reading imports.

Pure: no emulator, no network. Each function's main.py is imported in a fresh
interpreter (as Cloud Functions would import it) to see what it really loads.
"""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (REPO / "functions").glob("*/main.py"))
OUR_PACKAGES = frozenset(path.parent.name for path in REPO.glob("*/__init__.py"))
TYPE_CHECKER_ONLY = frozenset({"_typeshed"})  # typeshed's names (WriteableBuffer): under TYPE_CHECKING, never run
DOMAIN_MUST_NOT_IMPORT = ("google", "flask", "werkzeug", "functions_framework", "requests",
                          "common.cloud", "common.services", "common.api")
# What each layer of common/ may import of our own code, itself included (docs/architecture.md, "Layers"):
# domain nothing above it, cloud the domain and platform only; services anything below but never api.
LAYERS_IMPORT_ONLY = {"common.domain": ("common.domain",),
                      "common.cloud": ("common.cloud", "common.domain", "common.platform")}
LAYERS_NEVER_IMPORT = {"common.services": ("common.api",)}
# The benchmarks and the local stack's tools are for people and tests: no code that ships imports them.
TOOLS = ("bench", "infra.local")
MAY_IMPORT_TOOLS = ("tests", "bench", "infra.local")
# Imports that break a rule above and could not move yet: "file: module" -> why. Empty: every rule holds.
LAYER_EXCEPTIONS: dict[str, str] = {}
NO_FUNCTION_LOADS = frozenset({"torch", "torchvision", "ultralytics"})  # the trainer's
ALSO_NOT_LOADED_BY = {"api": frozenset({"PIL"})}
DUMMY_ENV = {"GOOGLE_CLOUD_PROJECT": "architecture-test", "DATA_BUCKET": "architecture-test",
             "API_TOKEN": "architecture-test-0123456789abcdefghij"}  # deploy.sh refuses a weak token


@dataclass(frozen=True)
class Import:
    module: str          # e.g. "google.cloud.firestore" (for `from google.cloud import firestore`)
    file: Path
    line: int
    lazy_in: str | None  # the outermost function holding the import; None at module level

    def where(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"


# ---- reading imports -------------------------------------------------------------------

def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    """Every import in the file, module-level and inside functions, relative ones resolved."""
    found: list[Import] = []
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]

    def visit(node: ast.AST, lazy_in: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, path, child.lineno, lazy_in) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(child, package)
                found.extend(Import(f"{base}.{alias.name}" if base else alias.name, path, child.lineno, lazy_in)
                             for alias in child.names if alias.name != "*")
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, lazy_in or (child.name if is_function else None))

    visit(ast.parse(path.read_text(), filename=str(path)), None)
    return found


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
    return ".".join([*base, *([node.module] if node.module else [])])


def names_used(path: Path) -> set[str]:
    """Names and attributes the file refers to (how a lazy import's function is reached)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return ({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
            | {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)})


def top_level(module: str) -> str:
    return module.partition(".")[0]


def is_third_party(module: str) -> bool:
    return top_level(module) not in sys.stdlib_module_names | OUR_PACKAGES | TYPE_CHECKER_ONLY | {"main", "__main__"}


def matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# ---- modules to distributions ----------------------------------------------------------

def normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


@cache
def distribution_of(module: str) -> str:
    """The installed distribution that provides `module` (namespace packages such as
    google.* are shared by many distributions: the file that defines it decides)."""
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        spec = importlib.util.find_spec(".".join(parts[:end]))
        if spec is None:
            raise LookupError(f"{module} is not installed")
        if spec.has_location:
            break
    candidates = importlib.metadata.packages_distributions().get(parts[0], [])
    if len(candidates) == 1:
        return normalized(candidates[0])
    origin = Path(spec.origin).resolve()
    for candidate in candidates:
        files = importlib.metadata.distribution(candidate).files or []
        if any(Path(file.locate()).resolve() == origin for file in files):
            return normalized(candidate)
    raise LookupError(f"no installed distribution provides {module} ({origin})")


def pinned(requirements: Path) -> dict[str, str]:
    """{distribution: version} of a requirements file's own `name==version` lines."""
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, separator, version = line.partition("==")
            assert separator, f"{requirements.relative_to(REPO)}: {line!r} is not pinned with =="
            pins[normalized(name.strip())] = version.strip()
    return pins


# ---- what a function loads -------------------------------------------------------------

PROBE = """
import importlib.util, json, sys
repo, main = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
spec = importlib.util.spec_from_file_location("main", main)
module = sys.modules["main"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}))
"""


@cache
def loaded_by(function: str) -> dict[str, str | None]:
    """{module: file} after importing functions/<function>/main.py in a fresh interpreter."""
    main = REPO / "functions" / function / "main.py"
    env = {**{k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}, **DUMMY_ENV}
    done = subprocess.run([sys.executable, "-I", "-c", PROBE, str(REPO), str(main)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"importing {main.relative_to(REPO)} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def our_files_loaded_by(function: str) -> list[Path]:
    loaded = loaded_by(function)
    return [Path(loaded[name]) for name in sorted(loaded)
            if name == "main" or (top_level(name) in OUR_PACKAGES and loaded[name])]


def direct_imports(function: str) -> list[Import]:
    """Third-party imports of our own code that the function loaded: every module-level
    one, and each import inside a function whose name that code refers to."""
    files = our_files_loaded_by(function)
    used = set().union(*(names_used(file) for file in files))
    return [imp for file in files for imp in imports_of(file)
            if is_third_party(imp.module) and (imp.lazy_in is None or imp.lazy_in in used)]


# ---- the domain ------------------------------------------------------------------------

def test_the_domain_imports_no_google_client_no_web_framework_and_no_outer_layer():
    domain = sorted((REPO / "common" / "domain").rglob("*.py"))
    assert domain, "common/domain has no modules"
    offending = [f"{imp.where()}: {imp.module}" for file in domain for imp in imports_of(file)
                 if any(matches(imp.module, prefix) for prefix in DOMAIN_MUST_NOT_IMPORT)]
    assert not offending, "the domain must stay pure:\n" + "\n".join(offending)


def test_the_import_reader_sees_what_the_domain_check_forbids(tmp_path, monkeypatch):
    """The check above can fail: lazy, aliased, relative and from-imports are all seen."""
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    package = tmp_path / "common" / "domain"
    package.mkdir(parents=True)
    (package / "bad.py").write_text(
        "import os\nfrom google.cloud import firestore as fs\nfrom .. import cloud\n"
        "def later():\n    import flask\n")
    modules = [imp.module for imp in imports_of(package / "bad.py")]
    assert modules == ["os", "google.cloud.firestore", "common.cloud", "flask"]
    assert [imp.lazy_in for imp in imports_of(package / "bad.py")] == [None, None, None, "later"]


def files_found_by(check, root: Path, sources: dict[str, str]) -> list[str]:
    """The files `check(root)` names once `sources` ({path: text}) are written under `root`."""
    for name, text in sources.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return [line.split(":")[0] for line in check(root)]


# ---- the layers -------------------------------------------------------------------------

def layer_violations(repo: Path) -> list[str]:
    """Every import of our own code that breaks a layer rule, as "file:line: module (the rule)"."""
    files = sorted(path for folder in ("common", "bench", "infra", "jobs", "yolodrop_cli", "functions", "tests")
                   for path in (repo / folder).rglob("*.py"))
    found, excused = [], set()
    for file in files:
        importer = ".".join(file.relative_to(repo).with_suffix("").parts)
        for imp in imports_of(file):
            broken = _rule_broken(importer, imp.module) if top_level(imp.module) in OUR_PACKAGES else None
            key = f"{file.relative_to(repo)}: {imp.module}"
            if broken and key in LAYER_EXCEPTIONS:
                excused.add(key)
            elif broken:
                found.append(f"{file.relative_to(repo)}:{imp.line}: {imp.module} ({broken})")
    return found + [f"{key}: listed in LAYER_EXCEPTIONS, breaks no rule now" for key in LAYER_EXCEPTIONS
                    if key not in excused]


def _rule_broken(importer: str, module: str) -> str | None:
    for layer, allowed in LAYERS_IMPORT_ONLY.items():
        if matches(importer, layer) and not any(matches(module, ok) for ok in allowed):
            return f"{layer} imports only {', '.join(allowed)}"
    for layer, banned in LAYERS_NEVER_IMPORT.items():
        if matches(importer, layer) and any(matches(module, no) for no in banned):
            return f"{layer} never imports {', '.join(banned)}"
    if any(matches(module, tool) for tool in TOOLS) and not any(matches(importer, ok) for ok in MAY_IMPORT_TOOLS):
        return f"only {', '.join(MAY_IMPORT_TOOLS)} import {', '.join(TOOLS)}"
    return None


def test_each_layer_imports_only_what_it_may():
    assert layer_violations(REPO) == []


def test_the_layer_check_finds_each_kind_of_violation(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    sources = {"common/domain/a.py": "from common.platform import config\n",
               "common/cloud/b.py": "from common.services import ingest\n",
               "common/services/c.py": "def later():\n    from common.api import access\n",
               "common/api/d.py": "from bench import predict\n",
               "functions/e/main.py": "from infra.local import stack\n",
               "bench/f.py": "from infra.local import stack\nfrom common.api import router\n",
               "common/services/g.py": "from common.cloud import storage\nfrom common.domain import layout\n"}
    found = files_found_by(layer_violations, tmp_path, sources)
    assert found == ["common/api/d.py", "common/cloud/b.py", "common/domain/a.py", "common/services/c.py",
                     "functions/e/main.py"]
    monkeypatch.setattr(sys.modules[__name__], "LAYER_EXCEPTIONS", {"common/cloud/b.py: common.services.ingest": "",
                                                                    "common/cloud/b.py: common.api.gone": ""})
    found = [line.split(":")[0] for line in layer_violations(tmp_path)]
    assert "common/cloud/b.py" not in found[:-1] and found[-1] == "common/cloud/b.py"  # the one no longer needed


# ---- the functions ---------------------------------------------------------------------

@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_loads_none_of_what_it_must_not(function):
    banned = NO_FUNCTION_LOADS | ALSO_NOT_LOADED_BY.get(function, frozenset())
    loaded = sorted({top_level(name) for name in loaded_by(function)} & banned)
    importers = [f"{imp.where()} {imp.module}" for imp in direct_imports(function) if top_level(imp.module) in banned]
    assert not loaded, f"functions/{function} loads {loaded}; our imports of them: {importers}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_loads_only_code_its_staged_folder_ships(function):
    """Terraform ships main.py and common/ (functions.tf); anything else of ours is missing in production."""
    ours = {top_level(name) for name in loaded_by(function) if top_level(name) in OUR_PACKAGES}
    assert ours <= {"common"}, f"functions/{function} loads {sorted(ours - {'common'})}, which is not deployed"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_lists_exactly_the_distributions_its_code_imports(function):
    requirements = REPO / "functions" / function / "requirements.txt"
    listed = set(pinned(requirements))
    imported: dict[str, list[str]] = {}
    for imp in direct_imports(function):
        imported.setdefault(distribution_of(imp.module), []).append(f"{imp.where()} {imp.module}")
    unlisted = {dist: sites for dist, sites in imported.items() if dist not in listed}
    assert not unlisted, f"{requirements.relative_to(REPO)} misses what the code imports: {unlisted}"
    unused = listed - set(imported)
    assert not unused, f"{requirements.relative_to(REPO)} lists what no loaded module imports: {sorted(unused)}"


def test_the_distribution_check_tells_shared_namespaces_apart():
    assert distribution_of("google.cloud.firestore_v1.base_query") == "google-cloud-firestore"
    assert distribution_of("google.api_core.exceptions") == "google-api-core"
    assert distribution_of("yaml") == "pyyaml"


def test_a_lazy_import_counts_only_when_its_function_is_reached(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "clients.py").write_text(
        "def storage():\n    from google.cloud import storage\n"
        "def jobs():\n    from google.cloud import run_v2\n")
    (tmp_path / "user.py").write_text("import clients\nclients.storage()\n")
    used = names_used(tmp_path / "user.py")
    reached = [imp.module for imp in imports_of(tmp_path / "clients.py") if imp.lazy_in in used]
    assert reached == ["google.cloud.storage"]


# ---- requirements files, deploy.sh and the local stack ---------------------------------

def every_requirements_file() -> list[Path]:
    return [REPO / "requirements.txt", REPO / "jobs" / "trainer" / "requirements.txt",
            REPO / "jobs" / "importer" / "requirements.txt",
            *(REPO / "functions" / function / "requirements.txt" for function in FUNCTIONS)]


def test_every_pin_agrees_across_files_and_with_the_installed_version():
    seen: dict[str, tuple[str, Path]] = {}
    for requirements in every_requirements_file():
        for dist, version in pinned(requirements).items():
            first = seen.setdefault(dist, (version, requirements))
            assert first[0] == version, f"{dist}: {version} in {requirements}, {first[0]} in {first[1]}"
            assert importlib.metadata.version(dist) == version, f"{dist}=={version} is not what is installed"


def test_the_top_level_requirements_are_the_union_of_the_functions():
    included = {line.split(None, 1)[1] for line in (REPO / "requirements.txt").read_text().splitlines()
                if line.startswith("-r ")}
    assert included == {f"functions/{function}/requirements.txt" for function in FUNCTIONS}


def test_the_local_stack_runs_every_function_from_its_folder():
    from infra.local import stack
    sources = {stack.function_command(key, 1)[1] for key in stack.FUNCTIONS}
    assert sources == {f"--source={REPO / 'functions' / function / 'main.py'}" for function in FUNCTIONS}


# ---- public interfaces only ----------------------------------------------------------------

# A library's private names (a leading underscore) change in any release without notice, so the code that ships
# reads none: no `x._name` but of its own object (self, cls), no import of a private module or name. "file:
# expression" -> why it is allowed anyway (reviewed; keep it short).
SHIPPED = ("common", "functions", "jobs", "yolodrop_cli")
PRIVATE_ACCESS_ALLOWED = {
    "jobs/trainer/evaluation.py: super()._process_batch":
        "Ultralytics fills its confusion matrix only while plotting (which downloads a font); its validator's "
        "per-batch matching is the one hook that sees each batch's matched predictions",
}


def private_access(repo: Path) -> list[str]:
    """Every read of a private name in shipped code, as "file:line: expression", and allowed entries that no
    longer match anything."""
    found, allowed = [], set()
    for file in sorted(path for folder in SHIPPED for path in (repo / folder).rglob("*.py")):
        relative = file.relative_to(repo)
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            for expression in _private_names(node):
                key = f"{relative}: {expression}"
                if key in PRIVATE_ACCESS_ALLOWED:
                    allowed.add(key)
                else:
                    found.append(f"{relative}:{getattr(node, 'lineno', 0)}: {expression}")
    return found + [f"{key}: listed in PRIVATE_ACCESS_ALLOWED, used no more" for key in PRIVATE_ACCESS_ALLOWED
                    if key not in allowed]


def _private_names(node: ast.AST) -> list[str]:
    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")
    if isinstance(node, ast.Attribute) and private(node.attr) \
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
        return [ast.unparse(node)]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [f"from {node.module} import {alias.name}" for alias in node.names
                if node.module not in TYPE_CHECKER_ONLY
                and (any(map(private, node.module.split("."))) or private(alias.name))]
    if isinstance(node, ast.Import):
        return [f"import {alias.name}" for alias in node.names if any(map(private, alias.name.split(".")))]
    return []


def test_shipped_code_reads_no_private_name_of_a_library():
    assert private_access(REPO) == []


def test_the_private_name_check_finds_each_kind(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    sources = {"common/cloud/a.py": "def f(db):\n    return db._firestore_api\n",
               "common/cloud/b.py": "from google.cloud.firestore_v1 import _helpers\n",
               "common/services/c.py": "import google.cloud._http\n",
               "functions/d/main.py": "class A:\n    def f(self):\n        return self._x, cls._y\n",
               "jobs/e.py": "from __future__ import annotations\nfrom . import _local\n"}
    found = files_found_by(private_access, tmp_path, sources)
    assert found == ["common/cloud/a.py", "common/cloud/b.py", "common/services/c.py",
                     "jobs/trainer/evaluation.py"]  # the last: its allowed entry matches nothing here


# ---- Firestore stays in the stores -------------------------------------------------------

# Each store in common/cloud owns its documents: their fields, queries and transitions (docs/architecture.md,
# "Stores"). Outside it, no code reaches Firestore itself: no import of its client, no query or reference built,
# no transaction run. Methods named so are Firestore's here; a store hands out what it read, not where it is.
FIRESTORE_MODULES = ("google.cloud.firestore", "google.cloud.firestore_v1")
FIRESTORE_CALLS = frozenset({"where", "document", "collection", "collection_group", "in_transaction",
                             "transaction", "batch", "bulk_writer", "start_at", "start_after"})


def firestore_reached_outside_stores(repo: Path) -> list[str]:
    """Every import of Firestore's client and every call of a Firestore method outside common/cloud, as
    "file:line: what"."""
    files = sorted(path for folder in SHIPPED for path in (repo / folder).rglob("*.py")
                   if path.relative_to(repo).parts[:2] != ("common", "cloud"))
    found = [f"{imp.file.relative_to(repo)}:{imp.line}: imports {imp.module}" for file in files
             for imp in imports_of(file) if any(matches(imp.module, m) for m in FIRESTORE_MODULES)]
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in FIRESTORE_CALLS:
                found.append(f"{file.relative_to(repo)}:{node.lineno}: .{node.func.attr}(...)")
    return sorted(found)


def test_only_the_stores_reach_firestore():
    assert firestore_reached_outside_stores(REPO) == []


def test_the_store_check_finds_firestore_reached_from_outside(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    sources = {"common/api/a.py": "from google.cloud.firestore_v1.base_query import FieldFilter\n",
               "common/services/b.py": "def f(store):\n    return store.jobs().document('x').get()\n",
               "functions/c/main.py": "def f(db):\n    return db.in_transaction(lambda t: None)\n",
               "common/cloud/d.py": "from google.cloud import firestore\ndef f(c):\n    return c.where(1)\n"}
    found = files_found_by(firestore_reached_outside_stores, tmp_path, sources)
    assert found == ["common/api/a.py", "common/services/b.py", "functions/c/main.py"]


# ---- every import of our own code resolves ---------------------------------------------

def our_source_files() -> list[Path]:
    return sorted(path for package in OUR_PACKAGES for path in (REPO / package).rglob("*.py"))


def source_of(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    return next((path for path in (base.with_suffix(".py"), base / "__init__.py") if path.exists()), None)


def top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def resolves(module: str) -> bool:
    """A module of ours, or a name defined at the top of one."""
    if source_of(module):
        return True
    parent, _, name = module.rpartition(".")
    parent_source = source_of(parent) if parent else None
    return parent_source is not None and name in top_level_names(parent_source)


def test_every_import_of_our_own_code_resolves():
    """Imports inside functions included: a moved module must not leave a lazy
    import behind that fails only when that code path runs (the demo once did)."""
    broken = [f"{item.where()}: {item.module}" for path in our_source_files() for item in imports_of(path)
              if top_level(item.module) in OUR_PACKAGES and not resolves(item.module)]
    assert broken == []

"""Plan the unpacking of a dataset archive (imports/<dataset>.zip): which members
go where under datasets/<dataset>/, and which are refused and why.

Pure: works on the archive's ZipInfo list, so the rules are unit-tested
without a bucket. Accepted layouts, with or without one enclosing folder:
  data.yaml, images/[split/]..., labels/[split/]...        (this bucket's layout)
  <split>/images/..., <split>/labels/...                    (Roboflow-style exports;
                                                             "valid" means val)
"""
from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from common.domain.issues import Issue
from common.domain.layout import DATA_YAML_NAMES, SPLIT_ALIASES

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 50 * 1024 ** 3
MAX_COMPRESSION_RATIO = 250  # beyond this a member is treated as a zip bomb
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")


@dataclass
class ImportPlan:
    members: list[tuple[zipfile.ZipInfo, str]] = field(default_factory=list)  # member, dataset-relative path
    issues: list[Issue] = field(default_factory=list)


def plan_import(infos: list[zipfile.ZipInfo], archive: str) -> ImportPlan:
    plan = ImportPlan()
    files = [info for info in infos if not info.is_dir() and not is_junk(info.filename)]
    if len(files) > MAX_MEMBERS:
        plan.issues.append(Issue("import_too_many_files", f"the archive has {len(files)} files; "
                                 f"the limit is {MAX_MEMBERS}: split it into several archives", archive))
        return plan
    total = sum(info.file_size for info in files)
    if total > MAX_TOTAL_BYTES:
        plan.issues.append(Issue("import_too_large", f"the archive unpacks to {total} bytes; the limit is "
                                 f"{MAX_TOTAL_BYTES}: upload the files directly or split the archive", archive))
        return plan
    strip = _enclosing_folder([info.filename for info in files])
    for info in files:
        problem = _refusal(info)
        if problem:
            plan.issues.append(Issue(problem[0], f"{info.filename}: {problem[1]}; not unpacked", archive))
            continue
        plan.members.append((info, target_of(info.filename[len(strip):])))
    return plan


def is_junk(name: str) -> bool:
    return any(part in JUNK or part.startswith("._") for part in PurePosixPath(name).parts)


def _enclosing_folder(names: list[str]) -> str:
    """'folder/' when every member sits in one folder that is not part of the layout."""
    firsts = {name.split("/", 1)[0] for name in names}
    if len(firsts) != 1 or all("/" not in name for name in names):
        return ""
    first = firsts.pop()
    if first in ("images", "labels") or first in SPLIT_ALIASES:
        return ""
    return first + "/"


def _refusal(info: zipfile.ZipInfo) -> tuple[str, str] | None:
    return member_refusal(info.filename, link=stat.S_ISLNK(info.external_attr >> 16),
                          encrypted=bool(info.flag_bits & 0x1), size=info.file_size, compressed=info.compress_size)


def member_refusal(name: str, link: bool = False, encrypted: bool = False, size: int = 0,
                   compressed: int = 0, special: bool = False) -> tuple[str, str] | None:
    """(code, reason) when a member of any archive (zip or tar) is not unpacked."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        return "import_unsafe_path", "the path leaves the dataset folder"
    if link:
        return "import_symlink", "symbolic links are not unpacked"
    if special:
        return "import_special_file", "devices, pipes and hard links are not unpacked"
    if encrypted:
        return "import_encrypted", "the member is encrypted"
    if compressed and size / compressed > MAX_COMPRESSION_RATIO:
        return "import_compression_ratio", (f"compressed {compressed} bytes expand to {size} "
                                            f"(more than {MAX_COMPRESSION_RATIO}x: a zip bomb?)")
    return None


def target_of(relative: str) -> str:
    """Where a member (its enclosing folder already removed) goes under datasets/<dataset>/."""
    parts = relative.split("/")
    if len(parts) > 2 and parts[0].lower() in SPLIT_ALIASES and parts[1] in ("images", "labels"):
        return "/".join([parts[1], SPLIT_ALIASES[parts[0].lower()], *parts[2:]])
    if len(parts) == 1 and parts[0] in DATA_YAML_NAMES:
        return "data.yaml"
    return relative

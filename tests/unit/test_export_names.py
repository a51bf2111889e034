import io
import zipfile
from pathlib import Path

import pytest

from common.domain.exports import safe_member_path


@pytest.mark.parametrize("name, safe", [
    ("sub/a.jpg", "sub/a.jpg"), ("../../../etc/a.jpg", "etc/a.jpg"), ("/abs/a.jpg", "abs/a.jpg"),
    ("a\\..\\..\\b.jpg", "a/b.jpg"), ("C:\\Windows\\a.jpg", "C_/Windows/a.jpg"), ("a\x00b\x1b[2J\n.jpg", "ab[2J.jpg"),
    ("a/.../b.jpg", "a/b.jpg"), ("..", "image"), ("", "image"), ("émile/ok.png", "émile/ok.png"),
])
def test_an_export_member_name_stays_inside_the_folder_it_is_unzipped_into(name, safe):
    assert safe_member_path(name) == safe


def test_unzipping_the_safe_names_writes_nothing_outside(tmp_path):
    odd = ["../../escape.jpg", "/tmp/abs.jpg", "..\\..\\win.jpg", "ok/../../up.jpg"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in odd:
            archive.writestr(f"images/train/{safe_member_path(name)}", b"x")
    target = tmp_path / "unzipped"
    with zipfile.ZipFile(buffer) as archive:
        for info in archive.infolist():  # as a naive unzip would: the name joined as it is
            path = Path(target, info.filename)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(info))
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["unzipped/images/train/escape.jpg", "unzipped/images/train/ok/up.jpg",
                       "unzipped/images/train/tmp/abs.jpg", "unzipped/images/train/win.jpg"]

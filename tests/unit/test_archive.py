import io
import zipfile

from common.domain.archive import MAX_COMPRESSION_RATIO, plan_import


def infos(files: dict[str, bytes], **extra) -> list[zipfile.ZipInfo]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue())).infolist()


def targets(plan) -> list[str]:
    return sorted(target for _, target in plan.members)


def test_bucket_layout_inside_one_folder_is_unwrapped():
    plan = plan_import(infos({"mine/data.yaml": b"names: [a]", "mine/images/train/a.jpg": b"x",
                              "mine/labels/train/a.txt": b"", "__MACOSX/mine/._a.jpg": b"",
                              "mine/.DS_Store": b""}), "imports/d.zip")
    assert targets(plan) == ["data.yaml", "images/train/a.jpg", "labels/train/a.txt"] and not plan.issues


def test_roboflow_split_folders_become_the_bucket_layout():
    plan = plan_import(infos({"train/images/a.jpg": b"x", "valid/labels/b.txt": b"", "test/images/c.png": b"x",
                              "data.yaml": b""}), "imports/d.zip")
    assert targets(plan) == ["data.yaml", "images/test/c.png", "images/train/a.jpg", "labels/val/b.txt"]


def test_unsafe_members_are_refused_with_a_reason():
    plan = plan_import(infos({"../evil.txt": b"x", "/abs/a.jpg": b"x", "images/ok.jpg": b"x"}), "imports/d.zip")
    assert targets(plan) == ["images/ok.jpg"]
    assert [i.code for i in plan.issues] == ["import_unsafe_path", "import_unsafe_path"]
    assert all(i.file == "imports/d.zip" for i in plan.issues)


def test_zip_bomb_member_is_refused():
    plan = plan_import(infos({"images/bomb.jpg": b"\0" * (MAX_COMPRESSION_RATIO * 2000)}), "imports/d.zip")
    assert plan.members == [] and [i.code for i in plan.issues] == ["import_compression_ratio"]

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile

import pytest

from common.domain.archive import (MAX_COMPRESSION_RATIO, MAX_DIRECTORY_ENTRIES, MAX_MEMBERS, MAX_TOTAL_BYTES,
                                   NAMED_SKIPS,
                                   NOT_DATASET_FILE, RATIO_FLOOR_BYTES, ArchiveRefused, ExpansionGuard,
                                   SkippedFiles, check_counts, check_directory, keep_dataset_files, plan_import,
                                   read_directory_end)
from common.services.archive_import import open_zip, plan_zip


def infos(files: dict[str, bytes], **extra) -> list[zipfile.ZipInfo]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue())).infolist()


def targets(plan) -> list[str]:
    return sorted(target for _, target in plan.members)


def test_an_archive_over_the_limits_is_refused_whole_so_its_import_fails_with_the_reason():
    many = [zipfile.ZipInfo(f"images/{n}.jpg") for n in range(MAX_MEMBERS + 1)]
    with pytest.raises(ArchiveRefused, match=f"has {MAX_MEMBERS + 1} files; the limit is {MAX_MEMBERS}") as refused:
        plan_import(many, "imports/d.zip")
    assert refused.value.code == "import_too_many_files"
    assert not plan_import(many[:MAX_MEMBERS], "imports/d.zip").issues  # the limit itself goes through
    huge = zipfile.ZipInfo("images/huge.jpg")
    huge.file_size = MAX_TOTAL_BYTES + 1
    with pytest.raises(ArchiveRefused, match="unpacks to") as refused:
        plan_import([huge], "imports/d.zip")
    assert refused.value.code == "import_too_large"


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


# ---- only dataset files ----------------------------------------------------------------

def test_only_dataset_files_are_kept_and_the_rest_are_issues():
    members = [("m1", "images/train/a.jpg"), ("m2", "labels/train/a.txt"), ("m3", "data.yaml"),
               ("m4", "w/evil.pt"), ("m5", "run.sh"), ("m6", "images/train/hook.py"), ("m7", "labels/a.pt"),
               ("m8", "images/notes.txt")]
    kept, issues = keep_dataset_files(members, [f"x/{target}" for _, target in members], "imports/d.zip")
    assert [target for _, target in kept] == ["images/train/a.jpg", "labels/train/a.txt", "data.yaml"]
    assert [i.code for i in issues] == [NOT_DATASET_FILE] * 5
    assert [i.message.split(":")[0] for i in issues] == ["x/w/evil.pt", "x/run.sh", "x/images/train/hook.py",
                                                          "x/labels/a.pt", "x/images/notes.txt"]


def test_many_skipped_members_make_a_bounded_number_of_issues():
    skipped = SkippedFiles("imports/d.zip")
    for n in range(100_000):
        skipped.add(f"junk/{n}.pt")
    issues = skipped.issues()
    assert len(issues) == NAMED_SKIPS + 1 and issues[-1].message.startswith(f"{100_000 - NAMED_SKIPS} more members")


# ---- a zip's end record ----------------------------------------------------------------

def zip_bytes(count: int, comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(count):
            archive.writestr(f"images/{n}.jpg", b"")
        archive.comment = comment
    return buffer.getvalue()


def test_the_end_record_of_a_real_zip_gives_its_directory():
    data = zip_bytes(3, comment=b"a long comment " * 4000)
    end = read_directory_end(io.BytesIO(data))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert end.entries == len(archive.infolist()) == 3
        assert end.offset == archive.start_dir == 3 * (30 + len("images/0.jpg"))
    assert end.size == 3 * (46 + len("images/0.jpg"))


def test_the_zip64_end_record_is_read_when_there_are_more_than_65535_entries():
    end = read_directory_end(io.BytesIO(zip_bytes(70_000)))
    assert end.entries == 70_000
    check_directory(end)


def zip64_claiming(entries: int, directory_size: int | None = None) -> bytes:
    """A real one-member zip whose zip64 end record claims `entries` (zipfile itself ignores the count)."""
    data = zip_bytes(1)
    end = data.rfind(b"PK\x05\x06")
    _, _, _, _, _, size, offset, _ = struct.unpack_from("<4s4H2LH", data, end)
    size = size if directory_size is None else directory_size
    end64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end] + end64 + locator + record


def test_a_zip_claiming_a_million_entries_is_refused_from_its_end_record():
    data = zip64_claiming(1_000_000)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 1  # what zipfile alone would have let through
    with pytest.raises(ArchiveRefused, match="lists 1000000 entries; the limit is") as refused:
        check_directory(read_directory_end(io.BytesIO(data)))
    assert refused.value.code == "import_too_many_files"


def test_a_zip_whose_directory_is_too_large_is_refused():
    with pytest.raises(ArchiveRefused, match="directory is 1073741824 bytes") as refused:
        check_directory(read_directory_end(io.BytesIO(zip64_claiming(1, 1024 ** 3))))
    assert refused.value.code == "import_zip_directory_too_large"


def test_no_end_record_leaves_the_verdict_to_zipfile():
    assert read_directory_end(io.BytesIO(b"not a zip at all")) is None


# ---- a tar stream's limits -------------------------------------------------------------

def tar_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def bomb_tgz(zeros: int) -> bytes:
    """A tar.gz of one image of `zeros` zero bytes, written streaming (never whole in memory)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6) as packed:
        info = tarfile.TarInfo("images/bomb.png")
        info.size = zeros
        packed.write(info.tobuf())
        block = bytes(1024 * 1024)
        for _ in range(zeros // len(block)):
            packed.write(block)
        packed.write(bytes(2 * tarfile.BLOCKSIZE))
    return buffer.getvalue()


@pytest.mark.parametrize("pack", [lambda data: data, gzip.compress, bz2.compress, lzma.compress])
def test_a_tar_stream_is_read_through_the_guard_whatever_its_compression(pack):
    guard = ExpansionGuard(io.BytesIO(pack(tar_of({"images/a.jpg": b"jpeg", "labels/a.txt": b"0 .5 .5 .1 .1"}))))
    with tarfile.open(fileobj=guard, mode="r|") as tar:
        read = {member.name: tar.extractfile(member).read() for member in tar}
    assert read == {"images/a.jpg": b"jpeg", "labels/a.txt": b"0 .5 .5 .1 .1"}


def test_a_tar_bomb_stops_once_past_the_floor_even_when_its_member_is_skipped():
    guard = ExpansionGuard(io.BytesIO(bomb_tgz(4 * RATIO_FLOOR_BYTES)))
    with pytest.raises(ArchiveRefused, match="expanded to .* a decompression bomb") as refused:
        with tarfile.open(fileobj=guard, mode="r|") as tar:
            for member in tar:
                guard.member_seen(member.size)  # and skipped: skipping a member reads it through too
    assert refused.value.code == "import_compression_ratio"
    assert guard.expanded <= RATIO_FLOOR_BYTES + ExpansionGuard.READ_BYTES


def test_the_total_expanded_size_is_capped():
    guard = ExpansionGuard(io.BytesIO(tar_of({"images/a.jpg": bytes(100_000)})), max_total=50_000)
    with pytest.raises(ArchiveRefused, match="expands past 50000 bytes") as refused:
        with tarfile.open(fileobj=guard, mode="r|") as tar:
            for member in tar:
                tar.extractfile(member).read()
    assert refused.value.code == "import_too_large"


def test_a_tar_may_hold_no_more_files_than_a_zip():
    check_counts(MAX_DIRECTORY_ENTRIES, MAX_MEMBERS)
    with pytest.raises(ArchiveRefused, match=f"more than {MAX_MEMBERS} files"):
        check_counts(MAX_MEMBERS + 1, MAX_MEMBERS + 1)
    with pytest.raises(ArchiveRefused, match="entries"):
        check_counts(MAX_DIRECTORY_ENTRIES + 1, 1)


# ---- the plan of a real zip ------------------------------------------------------------

def real_zip(files: dict[str, bytes]) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return open_zip(io.BytesIO(buffer.getvalue()))


def test_a_zip_unpacks_its_images_labels_and_data_yaml_only():
    zip_file = real_zip({"d/images/a.jpg": b"x", "d/labels/a.txt": b"", "d/data.yaml": b"names: [a]",
                         "d/w/evil.pt": b"pickle", "d/run.sh": b"#!/bin/sh", "d/images/hook.py": b"import os"})
    plan, members, generated = plan_zip(zip_file, "imports/d.zip")
    assert sorted(target for _, target in members) == ["data.yaml", "images/a.jpg", "labels/a.txt"]
    assert not generated
    assert sorted(i.message.split(":")[0] for i in plan.issues if i.code == NOT_DATASET_FILE) == [
        "d/images/hook.py", "d/run.sh", "d/w/evil.pt"]


def test_coco_annotations_are_not_unpacked_as_files_in_a_yolo_import():
    zip_file = real_zip({"images/a.jpg": b"x", "annotations/instances_train.json": b"{}"})
    plan, members, _ = plan_zip(zip_file, "imports/d.zip", "yolo")
    assert [target for _, target in members] == ["images/a.jpg"]
    assert [i.code for i in plan.issues] == [NOT_DATASET_FILE]


def test_coco_annotations_larger_than_the_budget_refuse_the_archive_before_they_are_read(monkeypatch):
    monkeypatch.setenv("IMPORT_COCO_MAX_BYTES", "1000")
    document = b'{"images": [], "annotations": [], "categories": []' + b" " * 2000 + b"}"
    zip_file = real_zip({"train/_annotations.coco.json": document, "train/a.jpg": b"x"})
    with pytest.raises(ArchiveRefused, match="2051 bytes of COCO JSON; an import parses at most 1000") as refused:
        plan_zip(zip_file, "imports/d.zip")
    assert refused.value.code == "import_coco_too_large"
    two = real_zip({"train/_annotations.coco.json": document[:600], "valid/_annotations.coco.json": document[:600]})
    with pytest.raises(ArchiveRefused, match="1200 bytes together"):
        plan_zip(two, "imports/d.zip")


def read_all(guard: ExpansionGuard) -> dict[str, bytes]:
    with tarfile.open(fileobj=guard, mode="r|") as tar:
        read = {}
        for member in tar:
            guard.member_seen(member.size)
            read[member.name] = tar.extractfile(member).read() if member.isfile() else b""
        return read


def test_a_tar_header_larger_than_a_member_needs_is_refused_before_it_is_read_whole():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, note in (("images/a.jpg", "short"), ("images/b.jpg", "x" * (3 * ExpansionGuard.HEADER_BYTES))):
            info = tarfile.TarInfo(name)
            info.pax_headers = {"comment": note}
            info.size = 2 * ExpansionGuard.HEADER_BYTES  # data larger than the header allowance is fine
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    guard = ExpansionGuard(io.BytesIO(buffer.getvalue()))
    with pytest.raises(ArchiveRefused, match="tar headers") as refused:
        read_all(guard)
    assert refused.value.code == "import_tar_header_too_large"
    assert guard.expanded < 2 * 2 * ExpansionGuard.HEADER_BYTES + 2 * ExpansionGuard.HEADER_BYTES


def test_long_names_and_ordinary_pax_headers_pass():
    long_name = "images/" + "deep/" * 60 + "a.jpg"
    for layout_format in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=layout_format) as tar:
            for name in (long_name, "labels/a.txt"):
                info = tarfile.TarInfo(name)
                info.size = 3
                tar.addfile(info, io.BytesIO(b"abc"))
        assert read_all(ExpansionGuard(io.BytesIO(buffer.getvalue()))) == {long_name: b"abc", "labels/a.txt": b"abc"}

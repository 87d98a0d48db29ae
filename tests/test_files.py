"""Files and folders written atomically: complete or absent, never half-written."""
import os
import stat

import pytest

from epsanet._files import atomic_directory, atomic_file


def test_a_folder_replaces_the_old_one_only_when_its_block_succeeds(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "old.txt").exists()
    with atomic_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_file_keeps_its_old_content_when_writing_fails(tmp_path):
    target = tmp_path / "checkpoint.pth"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]
    with atomic_file(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]


def test_files_and_folders_get_the_permissions_of_the_umask_not_tempfile_s_private_ones(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_file(tmp_path / "metrics.json") as tmp:
        tmp.write_text("{}")
    with atomic_directory(tmp_path / "best") as staging:
        (staging / "config.json").write_text("{}")
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "best").stat().st_mode) == 0o777 & ~umask

"""Files and folders written atomically: complete or absent, never half-written."""
import os
import stat

import pytest
import torch

import epsanet
from epsanet._utils.files import atomic_directory, atomic_file, current_umask, save_checkpoint, write_json, write_text


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


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_the_umask_is_read_without_changing_it(umask):
    assert current_umask() == umask and current_umask() == umask


def test_a_written_file_has_the_mode_the_umask_gives(tmp_path, umask):
    write_text(tmp_path / "notes.txt", "hello")
    save_checkpoint({"w": torch.zeros(1)}, tmp_path / "checkpoint.pth")
    assert stat.S_IMODE((tmp_path / "notes.txt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "checkpoint.pth").stat().st_mode) == 0o666 & ~umask


def test_a_written_folder_and_its_files_have_the_modes_the_umask_gives(tmp_path, umask):
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "config.json").write_text("{}")
        write_json(staging / "results.json", {})
        (staging / "weights").mkdir(mode=0o700)
        (staging / "weights" / "model.safetensors").write_bytes(b"")
        (staging / "weights" / "model.safetensors").chmod(0o600)  # as the safetensors writer leaves it
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "model" / "weights").stat().st_mode) == 0o777 & ~umask
    for name in ("config.json", "results.json", "weights/model.safetensors"):
        assert stat.S_IMODE((tmp_path / "model" / name).stat().st_mode) == 0o666 & ~umask


def test_a_saved_hub_folder_is_readable_as_the_umask_allows(tmp_path, umask):
    epsanet.save_pretrained(epsanet.epsanet50_small(num_classes=3, layers=(1, 1, 1, 1)), tmp_path / "hub")
    for name in ("config.json", "model.safetensors", "README.md"):
        assert stat.S_IMODE((tmp_path / "hub" / name).stat().st_mode) == 0o666 & ~umask

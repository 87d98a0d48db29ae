"""What a path is, told by its content; data folders and the --workers default built on it."""
import os
import warnings

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms

from epsanet._utils.paths import Kind, path_kind
from epsanet.training.data import build_dataset, create_loader, default_workers


def write(path, content: bytes):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("make, kind, description", [
    (lambda d: torch.save({"w": torch.zeros(1)}, d / "a.png") or d / "a.png", Kind.TORCH_ZIP,
     "a PyTorch checkpoint (torch.save)"),
    (lambda d: torch.save({"w": torch.zeros(1)}, d / "a", _use_new_zipfile_serialization=False) or d / "a",
     Kind.TORCH_PICKLE, "a pickle (legacy torch.save format)"),
    (lambda d: save_file({"w": torch.zeros(1)}, d / "w.pth") or d / "w.pth", Kind.SAFETENSORS, "a safetensors file"),
    (lambda d: Image.new("RGB", (4, 4)).save(d / "x.pth", format="PNG") or d / "x.pth", Kind.IMAGE, "a PNG image"),
    (lambda d: Image.new("RGB", (4, 4)).save(d / "x.jpg") or d / "x.jpg", Kind.IMAGE, "a JPEG image"),
    (lambda d: write(d / "notes.pth", "résumé of the run\n".encode()), Kind.TEXT, "a text file"),
    (lambda d: write(d / "c.json", b'{"architecture": "x"}'), Kind.TEXT, "a JSON file"),
    (lambda d: write(d / "e.pth", b""), Kind.EMPTY, "an empty file"),
    (lambda d: write(d / "r.bin", bytes(range(256))), Kind.BINARY, "a binary file of an unknown format"),
    (lambda d: d / "nowhere.pth", Kind.MISSING, "missing"),
], ids=["zip-named-png", "legacy-pickle", "safetensors-named-pth", "png-named-pth", "jpeg", "text", "json",
        "empty", "binary", "missing"])
def test_a_files_kind_comes_from_its_content_not_its_name(make, kind, description, tmp_path):
    info = path_kind(make(tmp_path))
    assert (info.kind, info.description) == (kind, description)


def test_folders_are_told_apart_by_what_they_hold(tmp_path):
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "config.json").write_text("{}")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_config.json").write_text("{}")
    assert path_kind(tmp_path / "hub").kind is Kind.HUB_FOLDER
    assert path_kind(tmp_path / "run").kind is Kind.TRAINING_RUN
    assert path_kind(tmp_path).kind is Kind.FOLDER


def test_a_broken_link_is_missing_and_says_where_it_points(tmp_path):
    (tmp_path / "link.pth").symlink_to(tmp_path / "gone.pth")
    info = path_kind(tmp_path / "link.pth")
    assert info.kind is Kind.MISSING and info.description == f"a broken link (to {tmp_path / 'gone.pth'})"


def image_folder(root, *classes):
    for name in classes:
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / name / "1.png")
    return root


def test_a_folder_of_class_folders_is_evaluated_as_it_is(tmp_path):
    dataset = build_dataset(image_folder(tmp_path, "cat", "dog"), "val", require_split=False)
    assert dataset.classes == ["cat", "dog"]


def test_split_folders_are_never_taken_for_classes(tmp_path):
    image_folder(tmp_path, "train/cat", "val/cat")
    with pytest.raises(FileNotFoundError, match=r"has no test/ folder \(it has train/, val/\): choose --split "
                                                r"train or val"):
        build_dataset(tmp_path, "test", require_split=False)


def test_the_default_workers_are_the_cpus_this_process_may_use_and_the_loader_does_not_warn(tmp_path):
    cpus = len(os.sched_getaffinity(0))
    assert default_workers() == min(8, cpus)
    assert default_workers(processes_per_machine=cpus) == 1
    dataset = build_dataset(image_folder(tmp_path, "a", "b"), "val", transforms.ToTensor(), require_split=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = create_loader(dataset, 2, train=False, workers=default_workers())
        assert len(list(loader)) == 1

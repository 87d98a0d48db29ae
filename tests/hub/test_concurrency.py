"""Loads and runs that overlap: processes downloading the same weights at once, a download killed
midway, two training runs on one folder. Real processes against the local Hub server (olah)."""
import hashlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

import huggingface_hub
import pytest
import torch
from PIL import Image

import epsanet
from epsanet._utils.lock import FolderInUseError, exclusive_folder
from epsanet.cli import main

REPO_ID = "epsanet-tests/epsanet-37mb"
# One EPSA block per stage at full width: 37 MB of weights, long enough a download to kill midway.
MODEL_ARGS = dict(layers=[1, 1, 1, 1], num_classes=10)
TINY_MODEL = ["--model-kwargs", "layers=(1,1,1,1)", "channels=(16,32,64,128)", "stem_width=16", "psa_groups=(1,1,2,4)"]

LOAD = r"""
import hashlib, sys, time
from pathlib import Path

import epsanet

ready, go = (Path(p) for p in sys.argv[2:4]) if len(sys.argv) > 2 else (None, None)
if ready is not None:
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
start = time.time()
model = epsanet.from_pretrained(sys.argv[1])
end = time.time()
digest = hashlib.sha256()
for key, value in model.state_dict().items():
    digest.update(key.encode() + value.numpy().tobytes())
print(digest.hexdigest(), start, end)
"""


def state_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode() + value.numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Tuple[Path, str]:
    """A saved model folder, and the digest of its state_dict."""
    torch.manual_seed(3)
    model = epsanet.epsanet50_small(**MODEL_ARGS).eval()
    return epsanet.save_pretrained(model, tmp_path_factory.mktemp("published") / "model"), state_digest(model)


@pytest.fixture(scope="module")
def published(local_hub, saved) -> str:
    folder, digest = saved
    epsanet.publish(folder, REPO_ID, endpoint=local_hub.upload_url)
    return digest


def loader(cache: Path, *args: str, repo_id: str = REPO_ID) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_CACHE=str(cache))
    return subprocess.Popen([sys.executable, "-c", LOAD, f"hf-hub:{repo_id}", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> Tuple[str, float, float]:
    """The digest of the state_dict the process loaded, and when its from_pretrained call began and ended."""
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    digest, start, end = out.split()
    return digest, float(start), float(end)


def repo_cache(cache: Path, repo_id: str = REPO_ID) -> Path:
    return cache / f"models--{repo_id.replace('/', '--')}"


def test_four_processes_loading_at_once_on_an_empty_cache_get_identical_weights_and_one_cache_entry(
        published, tmp_path):
    cache = tmp_path / "cache"
    processes = [loader(cache, str(tmp_path / f"ready{i}"), str(tmp_path / "go")) for i in range(4)]
    deadline = time.monotonic() + 600
    while not all((tmp_path / f"ready{i}").exists() for i in range(4)):  # all imported, none downloading yet
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
        time.sleep(0.01)
    (tmp_path / "go").touch()
    digests, starts, ends = zip(*(finish(p) for p in processes))
    assert digests == (published,) * 4
    assert max(starts) < min(ends)  # all four were loading at the same time
    (snapshot,) = (repo_cache(cache) / "snapshots").iterdir()
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in (repo_cache(cache) / "blobs").iterdir()) == sorted(
        (snapshot / name).resolve().name for name in ("config.json", "model.safetensors"))


def partial_downloads(blobs: Path) -> List[Path]:
    """The non-empty ``*.incomplete`` files in a repository's ``blobs`` folder, listed while a download
    writes there: a folder not made yet, or a file renamed (download complete) or removed between the
    listing and its ``stat``, is skipped rather than raising FileNotFoundError."""
    try:
        entries = list(os.scandir(blobs))
    except FileNotFoundError:
        return []
    partial = []
    for entry in entries:
        if not entry.name.endswith(".incomplete"):
            continue
        try:
            if entry.stat().st_size > 0:
                partial.append(Path(entry.path))
        except FileNotFoundError:
            continue
    return partial


def kill_midway(cache: Path, repo_id: str) -> List[Path]:
    """Start a load of ``repo_id`` into ``cache`` and SIGKILL it once the weights are partly written;
    the partial files it leaves, or none if the download ended before the kill. Only the repository's
    own ``blobs`` folder is listed while the download runs: huggingface_hub makes and removes
    temporary folders elsewhere in the cache."""
    process = loader(cache, repo_id=repo_id)
    partial = []
    while process.poll() is None and not partial:
        partial = partial_downloads(repo_cache(cache, repo_id) / "blobs")
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return partial if partial and all(p.exists() for p in partial) else []


def test_a_download_killed_midway_leaves_a_cache_the_next_load_uses_without_cleanup(local_hub, saved, tmp_path):
    folder, digest = saved
    # A repository olah has never served, so the download runs at its slowest (olah caches what it
    # served); on a machine so fast that it still ends before the kill, try again with a new one.
    for attempt in range(3):
        repo_id = f"{REPO_ID}-killed-{attempt}"
        epsanet.publish(folder, repo_id, endpoint=local_hub.upload_url)
        cache = tmp_path / f"cache{attempt}"
        partial = kill_midway(cache, repo_id)
        if partial:
            break
    assert partial, "three downloads ended before they could be killed"
    snapshots = repo_cache(cache, repo_id) / "snapshots"
    assert not list(snapshots.glob("*/model.safetensors"))

    assert finish(loader(cache, repo_id=repo_id))[0] == digest
    # huggingface_hub downloads into a file of its own per process and renames it when complete; the
    # killed process's partial file stays, reported by `hf cache ls` and removed by `hf cache prune`.
    (snapshot,) = snapshots.iterdir()
    assert (snapshot / "model.safetensors").resolve().name == epsanet.hub.sha256_of(snapshot / "model.safetensors")
    reported = {Path(f.file_path) for f in huggingface_hub.scan_cache_dir(cache).incomplete_files}
    assert reported == set(partial)


@pytest.fixture
def images(tmp_path) -> Path:
    """An image folder of two classes, four 16x16 images each, in train/ and val/."""
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for label in ("a", "b"):
            (tmp_path / "images" / split / label).mkdir(parents=True)
            for i in range(4):
                pixels = torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=generator).numpy()
                Image.fromarray(pixels).save(tmp_path / "images" / split / label / f"{i}.png")
    return tmp_path / "images"


def train(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "epsanet", "train", "--data", str(data), "--output-dir", str(out), "--img-size", "16",
         "--batch-size", "4", "--workers", "0", *TINY_MODEL, *extra],
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_second_training_run_on_the_same_folder_is_refused_naming_the_first_until_that_one_dies(images, tmp_path):
    out = tmp_path / "run"
    first = train(images, out, "--epochs", "1000")
    holder = f"epsanet train pid {first.pid} on {socket.gethostname()}"
    deadline = time.monotonic() + 600
    while not ((out / ".lock").exists() and (out / ".lock").read_text().strip() == holder):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-3000:]
        time.sleep(0.05)
    first.send_signal(signal.SIGSTOP)  # holding the folder, without taking the CPU from the others
    second = train(images, out, "--epochs", "1")
    _, err = second.communicate(timeout=600)
    assert (second.returncode, err) == (2, f"epsanet train: error: {out} is in use by {holder}: wait for it to "
                                           "finish, or choose another --output-dir\n")

    first.send_signal(signal.SIGKILL)
    first.communicate()
    third = train(images, out, "--epochs", "1", "--resume", "auto")
    _, err = third.communicate(timeout=600)
    assert third.returncode == 0, err[-3000:]
    with exclusive_folder(out):  # released when the run ended
        assert (out / "summary.json").is_file()


def test_a_folder_held_in_this_process_is_refused_to_the_next_holder_and_free_after(tmp_path):
    with exclusive_folder(tmp_path / "run", "the first"):
        with pytest.raises(FolderInUseError, match=f"is in use by the first pid {os.getpid()} on "):
            with exclusive_folder(tmp_path / "run"):
                pass
    with exclusive_folder(tmp_path / "run"):
        pass
    assert not (tmp_path / "run").exists()  # created by the lock and left empty: removed


HOLD_AND_FORK = r"""
import multiprocessing, sys, time

from epsanet._utils.lock import exclusive_folder

with exclusive_folder(sys.argv[1], "the parent"):
    worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(600,), daemon=True)
    worker.start()  # as a DataLoader worker is: forked while the folder is held
    print(worker.pid, flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_frees_the_folder_while_the_children_it_forked_still_run(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", HOLD_AND_FORK, str(tmp_path / "run")], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        os.kill(child, 0)  # the forked child outlives its parent
        with exclusive_folder(tmp_path / "run"):
            pass
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_folder_stays_held_after_a_forked_child_exits(tmp_path):
    # DataLoader workers are forked and exit every epoch: their copies of the lock file's descriptor
    # must not take the lock with them.
    with exclusive_folder(tmp_path / "run", "the parent"):
        worker = multiprocessing.get_context("fork").Process(target=os.getpid)
        worker.start()
        worker.join()
        other = subprocess.run([sys.executable, "-c", "import sys\nfrom epsanet._utils.lock import exclusive_folder\n"
                                "with exclusive_folder(sys.argv[1]): pass", str(tmp_path / "run")],
                               capture_output=True, text=True)
    assert other.returncode != 0
    assert f"is in use by the parent pid {os.getpid()} on " in other.stderr


def test_detection_training_is_refused_a_folder_another_process_holds(tmp_path, capsys):
    missing = str(tmp_path / "nothing")
    with exclusive_folder(tmp_path / "run", "the holder"):
        status = main(["detect", "train", "--train-images", missing, "--train-ann", missing, "--val-images", missing,
                       "--val-ann", missing, "--output-dir", str(tmp_path / "run")])
    assert (status, capsys.readouterr().err) == (2, f"epsanet detect: error: {tmp_path / 'run'} is in use by the "
                                                    f"holder pid {os.getpid()} on {socket.gethostname()}: wait for it "
                                                    "to finish, or choose another --output-dir\n")

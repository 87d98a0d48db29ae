"""A small image folder of real digits and the tiny EPSANet the training tests train on it, so that a
run takes seconds."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from common import REPO
from PIL import Image

TINY_MODEL = ["--model-kwargs", "layers=(1,1,1,1)", "channels=(16,32,64,128)", "stem_width=16", "psa_groups=(1,1,2,4)"]
CLASSES = (0, 1, 2)
IMAGES_PER_CLASS = 16


def write_digits_folder(root: Path, per_class: int = IMAGES_PER_CLASS) -> Path:
    """ROOT/train/<digit>/*.png and ROOT/val/<digit>/*.png from scikit-learn's real digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for split_index, split in enumerate(("train", "val")):
        for digit in CLASSES:
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i in np.flatnonzero(digits.target == digit)[split_index * per_class:(split_index + 1) * per_class]:
                pixels = np.round(digits.images[i] * 255 / 16).astype(np.uint8)
                Image.fromarray(pixels).resize((24, 24), Image.BICUBIC).save(folder / f"{i}.png")
    return root


def train_args(data: Path, out: Path, *extra: str) -> list:
    return ["train", "--data", str(data), "--output-dir", str(out), "--recipe", "digits", "--img-size", "16",
            "--batch-size", "8", "--epochs", "2", "--workers", "0", *TINY_MODEL, *extra]


def finished_run(root: Path) -> tuple:
    """A finished 1-epoch run of the tiny EPSANet on digits 0, 1, 2 at 16 px in ``root/run``, and
    its data folder ``root/digits``."""
    from epsanet.cli import main

    data = write_digits_folder(root / "digits")
    assert main([*train_args(data, root / "run"), "--epochs", "1"]) == 0
    return root / "run", data


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "epsanet", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, **kwargs)

"""Heavier detection runs (``pytest -m slow``): DDP on two processes, and the documented demo."""
import json
import os
import subprocess
import sys

import pytest
from detection_settings import tiny_cli

pytestmark = pytest.mark.slow


def epsanet(*args, processes=1):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                "-m"] if processes > 1 else [sys.executable, "-m"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([*launcher, "epsanet", *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_ddp_trains_on_two_processes_and_evaluates_every_image_once(shapes, tmp_path):
    data = ["--train-images", str(shapes["train"]["images"]), "--train-ann", str(shapes["train"]["annotations"]),
            "--val-images", str(shapes["val"]["images"]), "--val-ann", str(shapes["val"]["annotations"])]
    # every detection is kept (score threshold 0): 20 per image, even for a barely trained model
    trained = epsanet("detect", "train", *data, *tiny_cli("fasterrcnn_fpn", box_score_thresh=0.0),
                      "--batch-size", "2", "--epochs", "1", "--lr", "0.01", "--warmup-iters", "2", "--workers", "0",
                      "--no-progress", "--output-dir", str(tmp_path / "run"), processes=2)
    assert "2 process(es) x 2 images" in trained.stdout
    assert [json.loads(line)["epoch"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()] == [1]

    evaluation = [str(tmp_path / "run" / "last.pth"), "--images", str(shapes["val"]["images"]),
                  "--ann", str(shapes["val"]["annotations"]), "--batch-size", "1", "--workers", "0"]
    epsanet("detect", "eval", *evaluation, "--output", str(tmp_path / "ddp.json"), processes=2)
    epsanet("detect", "eval", *evaluation, "--output", str(tmp_path / "single.json"))
    ddp, single = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("ddp", "single"))
    assert ddp == single and single["detections"]["bbox"] == 4 * 20  # 20 per validation image


@pytest.mark.timeout(3600)  # about 20 CPU-minutes of training
def test_the_demo_fine_tunes_faster_rcnn_on_epsanet50_small_to_a_box_ap50_clearly_above_zero(tmp_path):
    """`epsanet detect demo`: the shapes set, then a few minutes of CPU training from scratch."""
    epsanet("detect", "demo", str(tmp_path))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epoch"] == 4 and metrics["bbox"]["AP50"] > 0.15

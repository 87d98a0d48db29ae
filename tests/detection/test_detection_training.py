"""COCO evaluation and fine-tuning: the metrics, the train/eval commands, checkpoints, the run
folder and resume."""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from detection_settings import tiny, tiny_cli

from epsanet._utils.lock import FolderInUseError, exclusive_folder
from epsanet.cli import build_parser, main
from epsanet.commands.detect import demo_config
from epsanet.detection import (
    COCO_METRICS,
    CocoDetection,
    collate,
    detection_transforms,
    fasterrcnn_fpn,
    load_coco,
    load_detector,
    train_one_epoch,
)
from epsanet.detection.coco_eval import summarize
from epsanet.detection.config import config_from_arguments
from epsanet.detection.engine import train
from epsanet.training.distributed import Environment

ROOT = Path(__file__).resolve().parents[2]


def ground_truth_as_results(coco, iou_type):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
             **({"bbox": a["bbox"]} if iou_type == "bbox" else {"segmentation": a["segmentation"]})}
            for a in coco.anns.values()]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_detections_equal_to_the_annotations_score_a_perfect_coco_table(iou_type, shapes):
    coco = load_coco(shapes["val"]["annotations"])
    result = summarize(coco, ground_truth_as_results(coco, iou_type), iou_type)
    assert list(result.metrics) == list(COCO_METRICS) and result.detections == len(coco.anns)
    assert [result.metrics[k] for k in ("AP", "AP50", "AP75", "AR10", "AR100")] == pytest.approx([1.0] * 5)
    # -1: no object of that size; AR1 counts one detection per image, and images hold several
    assert all(v == -1.0 or v == pytest.approx(1.0) for k, v in result.metrics.items() if k != "AR1")
    assert 0 < result.metrics["AR1"] < 1
    lines = result.table.splitlines()
    assert len(lines) == 12 and lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all")


def test_no_detections_score_zero(shapes):
    coco = load_coco(shapes["val"]["annotations"])
    result = summarize(coco, [], "bbox")
    assert result.metrics["AP"] == result.metrics["AR100"] == 0.0


def run_script(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")  # as the one_thread fixture
    done = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done


def data_options(shapes):
    return ["--train-images", str(shapes["train"]["images"]), "--train-ann", str(shapes["train"]["annotations"]),
            "--val-images", str(shapes["val"]["images"]), "--val-ann", str(shapes["val"]["annotations"])]


@pytest.fixture(scope="module")
def fine_tuned(shapes, tmp_path_factory):
    """One epoch of Mask R-CNN on epsanet50_small with bfloat16 AMP, then a second one resumed from
    the checkpoint by train/train_detection.py."""
    out = tmp_path_factory.mktemp("run")
    args = [*data_options(shapes), "--model", "maskrcnn_fpn", *tiny_cli("maskrcnn_fpn"), "--batch-size", "4",
            "--lr", "0.01", "--warmup-iters", "2", "--lr-steps", "8", "--amp", "bf16", "--workers", "0",
            "--no-progress", "--output-dir", str(out)]
    assert main(["detect", "train", *args, "--epochs", "1"]) == 0
    first = torch.load(out / "last.pth", weights_only=True)
    resumed = run_script("train/train_detection.py", *args, "--epochs", "2", "--resume", str(out / "last.pth"))
    return out, first, resumed


def test_a_short_fine_tune_lowers_the_loss(shapes):
    model = fasterrcnn_fpn("epsanet50_small", num_classes=5, **tiny("fasterrcnn_fpn"))
    dataset = CocoDetection(shapes["train"]["images"], shapes["train"]["annotations"],
                            transforms=detection_transforms(train=True))
    images, targets = collate([dataset[i] for i in range(4)])
    model.train()
    with torch.no_grad():
        initial = sum(model(list(images), list(targets)).values()).item()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    for epoch in range(2):
        losses = train_one_epoch(model, optimizer, scheduler, [(images, targets)] * 3,
                                 Environment(torch.device("cpu")), epoch=epoch)
    assert losses["loss"] < 0.75 * initial
    assert losses["loss_classifier"] < losses["loss"]


def test_the_log_records_every_epoch_across_a_resume(fine_tuned):
    out, _, _ = fine_tuned
    epochs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(math.isfinite(e["loss"]) and "bbox_AP50" in e and "segm_AP50" in e for e in epochs)


def test_each_evaluation_saves_the_12_box_and_mask_metrics_and_prints_their_tables(fine_tuned):
    out, _, resumed = fine_tuned
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == 2
    assert list(metrics["bbox"]) == list(COCO_METRICS) and list(metrics["segm"]) == list(COCO_METRICS)
    assert all(-1 <= v <= 1 for kind in ("bbox", "segm") for v in metrics[kind].values())
    assert resumed.stdout.count("Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]") == 2


def test_resume_continues_from_the_checkpoint_with_its_optimizer_and_schedule(fine_tuned):
    out, first, _ = fine_tuned
    second = torch.load(out / "last.pth", weights_only=True)
    assert (first["epoch"], second["epoch"]) == (1, 2)
    iterations = [c["scheduler"]["_schedulers"][1]["last_epoch"] for c in (first, second)]
    assert iterations == [2, 4]  # 8 images in batches of 4 per epoch
    assert second["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01)  # warmup over, no step before 8
    assert first["optimizer"]["state"].keys() == second["optimizer"]["state"].keys() != set()
    assert second["model_config"] == first["model_config"]
    assert [c["name"] for c in second["categories"]] == ["circle", "square", "triangle", "star"]


def test_the_eval_script_reproduces_the_saved_metrics_of_a_checkpoint(fine_tuned, shapes, tmp_path):
    out, _, _ = fine_tuned
    run_script("eval/eval_detection.py", str(out / "last.pth"), "--images", str(shapes["val"]["images"]),
               "--ann", str(shapes["val"]["annotations"]), "--amp", "bf16", "--workers", "0", "--batch-size", "4",
               "--output", str(tmp_path / "metrics.json"))
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads((out / "metrics.json").read_text())


def test_load_detector_rebuilds_the_fine_tuned_model(fine_tuned):
    out, _, _ = fine_tuned
    model, checkpoint = load_detector(out / "last.pth")
    assert type(model).__name__ == "MaskRCNN" and model.roi_heads.box_predictor.cls_score.out_features == 5
    assert all(torch.equal(v, checkpoint["model"][k]) for k, v in model.state_dict().items())


def test_resuming_with_another_model_is_a_clear_error(fine_tuned, shapes, capsys):
    out, _, _ = fine_tuned
    code = main(["detect", "train", *data_options(shapes), "--model", "fasterrcnn_fpn",
                 "--resume", str(out / "last.pth"), "--output-dir", str(out / "other")])
    assert code == 2
    assert "was trained with another model" in capsys.readouterr().err


def test_a_truncated_checkpoint_is_a_one_line_error(fine_tuned, tmp_path, capsys):
    out, _, _ = fine_tuned
    truncated = tmp_path / "last.pth"
    with open(out / "last.pth", "rb") as f:
        truncated.write_bytes(f.read(1000))
    assert main(["detect", "eval", str(truncated), "--images", ".", "--ann", "x.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read checkpoint {truncated}" in err


def test_the_demo_trains_its_recipe_on_the_shapes_set_with_overrides(shapes, tmp_path):
    (tmp_path / "shapes").symlink_to(shapes["train"]["images"].parent)
    config = demo_config(build_parser().parse_args(["detect", "demo", str(tmp_path), "--epochs", "1"]))
    assert (config.model, config.backbone, config.epochs, config.lr, config.amp) == ("fasterrcnn_fpn",
                                                                                    "epsanet50_small", 1, 0.02, "auto")
    assert (config.train_ann, config.val_images) == (str(tmp_path / "shapes" / "annotations" / "instances_train.json"),
                                                     str(tmp_path / "shapes" / "val"))
    assert (config.output_dir, config.resume) == (str(tmp_path / "run"), "auto")  # a second demo continues the run


def test_the_demo_with_overwrite_replaces_its_run_instead_of_continuing_it(shapes, tmp_path):
    (tmp_path / "shapes").symlink_to(shapes["train"]["images"].parent)
    config = demo_config(build_parser().parse_args(["detect", "demo", str(tmp_path), "--overwrite"]))
    assert (config.resume, config.overwrite) == (None, True)


# -- the run folder: refused, replaced, continued exactly -------------------------------------------

def quick_run(shapes, out, *extra):
    """Two steps per epoch of a tiny Faster R-CNN, evaluated every epoch, in float32."""
    return ["detect", "train", *data_options(shapes), *tiny_cli("fasterrcnn_fpn"), "--batch-size", "4", "--lr", "0.01",
            "--warmup-iters", "2", "--lr-steps", "2", "--workers", "0", "--no-progress", "--output-dir", str(out),
            *extra]


def snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(shapes, tmp_path_factory):
    """A finished 2-epoch run, uninterrupted."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(quick_run(shapes, out, "--epochs", "2")) == 0
    return out


def test_a_run_resumed_after_an_epoch_ends_with_the_weights_of_the_uninterrupted_run(finished_run, shapes, tmp_path):
    out = tmp_path / "run"
    assert main(quick_run(shapes, out, "--epochs", "1", "--resume")) == 0  # --resume on a new folder starts it
    assert main(quick_run(shapes, out, "--epochs", "2", "--resume")) == 0  # and continues it
    resumed, uninterrupted = (torch.load(run / "last.pth", weights_only=True) for run in (out, finished_run))
    assert resumed["epoch"] == uninterrupted["epoch"] == 2
    assert resumed["model"].keys() == uninterrupted["model"].keys()
    assert all(torch.equal(resumed["model"][k], uninterrupted["model"][k]) for k in resumed["model"])
    assert len(resumed["rng"]) == 1 and resumed["rng"][0].keys() == {"torch", "cuda", "numpy", "python"}
    logs = [[json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()] for run in (out, finished_run)]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in logs[0]] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in logs[1]]  # one row per epoch, no repeats
    assert json.loads((out / "metrics.json").read_text()) == json.loads((finished_run / "metrics.json").read_text())


def test_a_second_run_into_a_finished_run_folder_is_refused_and_changes_nothing(finished_run, shapes, capsys):
    before = snapshot(finished_run)
    assert main(quick_run(shapes, finished_run, "--epochs", "3")) == 2
    assert capsys.readouterr().err == (f"epsanet detect: error: {finished_run} already holds a run (last.pth): "
                                       "continue it with --resume, replace it with --overwrite, or choose another "
                                       "--output-dir\n")
    assert snapshot(finished_run) == before


def test_overwrite_replaces_the_run_in_the_folder(finished_run, shapes, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "notes.txt").write_text("left by the previous run")
    assert main(quick_run(shapes, out, "--epochs", "1", "--overwrite")) == 0
    assert torch.load(out / "last.pth", weights_only=True)["epoch"] == 1
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()] == [1]
    assert sorted(p.name for p in out.iterdir()) == [".lock", "last.pth", "log.jsonl", "metrics.json"]


def test_a_loss_that_becomes_non_finite_stops_the_run_in_one_line(shapes, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(quick_run(shapes, out, "--epochs", "1", "--lr", "1e30", "--warmup-iters", "0")) == 2
    err = capsys.readouterr().err
    assert err.startswith("epsanet detect: error: epoch 1: the ") and err.count("\n") == 1, err
    assert err.endswith("no checkpoint was written\n") and not out.exists()


def test_the_library_holds_the_run_folder_as_the_command_does(shapes, tmp_path):
    config = config_from_arguments(build_parser().parse_args(quick_run(shapes, tmp_path / "run")))
    with exclusive_folder(tmp_path / "run", "another run"):
        with pytest.raises(FolderInUseError, match="is in use by another run"):
            train(config)


@pytest.mark.parametrize("command", ["train", "detect train"])
def test_both_training_commands_spell_mixed_precision_alike(command, shapes):
    data = data_options(shapes) if command == "detect train" else []
    parse = lambda *amp: build_parser().parse_args([*command.split(), *data, *amp]).amp  # noqa: E731
    assert (parse("--amp", "bf16"), parse("--amp", "fp16"), parse("--amp")) == ("bf16", "fp16", "auto")


def test_a_detection_run_given_as_a_classifier_points_to_epsanet_detect(finished_run, shapes, capsys):
    image = sorted(Path(shapes["val"]["images"]).iterdir())[0]
    checkpoint = finished_run / "last.pth"
    assert main(["predict", str(image), "--model", str(finished_run)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"epsanet predict: error: {checkpoint} is a detector's checkpoint (`epsanet detect train`), not a "
        f"classifier's: use it with `epsanet detect eval {checkpoint}` or `epsanet detect train --resume`"]

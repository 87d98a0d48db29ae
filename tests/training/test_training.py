"""Training and evaluation: recipes, the run folder, resume after a kill, torchrun DDP, eval, bad input.

Runs use a tiny EPSANet (one PSA block per stage, narrow) on a small image folder of real digits
written by the tests, so that each training run takes seconds.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from common import HELPERS, REPO
from digits import CLASSES, IMAGES_PER_CLASS, run_cli, train_args, write_digits_folder
from PIL import Image
from safetensors.torch import load_file
from torchvision import transforms

import epsanet
from epsanet.cli import build_parser, main
from epsanet.training import resolve_config
from epsanet.training.data import DigitsDataset
from epsanet.training.engine import build_optimizer, build_scheduler, build_transforms


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    return write_digits_folder(tmp_path_factory.mktemp("digits_folder"))


@pytest.fixture(scope="module")
def tiny_run(digits_folder, tmp_path_factory) -> Path:
    """A finished 2-epoch run of the tiny model on the digits folder."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(train_args(digits_folder, out)) == 0
    return out


def parse(*argv: str) -> dict:
    return vars(build_parser().parse_args(["train", *argv]))


def tiny_model(num_classes: int = 3) -> torch.nn.Module:
    return timm.create_model("epsanet50_small", num_classes=num_classes, layers=(1, 1, 1, 1),
                             channels=(16, 32, 64, 128), stem_width=16, psa_groups=(1, 1, 2, 4))


def state_dicts_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- recipes --------------------------------------------------------------------------------------

def test_train_with_no_arguments_is_the_embedded_digits_default():
    config = resolve_config(parse())
    assert (config.data, config.model, config.recipe) == ("digits", "epsanet50_small", "digits")
    assert (config.epochs, config.img_size, config.opt) == (8, 32, "adamw")
    assert config.output_dir == str(Path("runs") / "digits-epsanet50_small")


def test_the_paper_recipe_is_the_official_epsanet_recipe():
    config = resolve_config(parse("--recipe", "paper", "--data", "/data/imagenet"), world_size=8)
    assert config.global_batch_size == 256
    model = tiny_model()
    optimizer = build_optimizer(model, config)
    assert type(optimizer) is torch.optim.SGD and len(optimizer.param_groups) == 1  # decay on every parameter
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.1, 0.9, False, 1e-4)
    scheduler, epochs = build_scheduler(optimizer, config, updates_per_epoch=5005)
    assert epochs == 120
    lrs = {}
    for epoch in (0, 29, 30, 59, 60, 90, 119):
        scheduler.step(epoch)
        lrs[epoch] = group["lr"]
    assert lrs == pytest.approx({0: 0.1, 29: 0.1, 30: 0.01, 59: 0.01, 60: 1e-3, 90: 1e-4, 119: 1e-4})
    train_tf, eval_tf = build_transforms(config, timm.data.resolve_data_config(model=model))
    assert "RandomResizedCrop" in str(train_tf) and "size=(224, 224), scale=(0.08, 1.0)" in str(train_tf)
    assert "RandomHorizontalFlip(p=0.5)" in str(train_tf) and "ColorJitter" not in str(train_tf)
    assert "Resize(size=256" in str(eval_tf) and "CenterCrop(size=(224, 224))" in str(eval_tf)
    assert config.smoothing == 0.1 and config.mixup == config.cutmix == 0 and not config.model_ema


def test_the_modern_recipe_adds_warmup_cosine_mixup_cutmix_randaugment_and_ema():
    config = resolve_config(parse("--recipe", "modern", "--data", "/data/imagenet"), world_size=8)
    assert (config.sched, config.warmup_epochs, config.sched_on_updates) == ("cosine", 5, True)
    assert (config.mixup, config.cutmix, config.model_ema) == (0.2, 1.0, True)
    assert config.auto_augment.startswith("rand-")
    optimizer = build_optimizer(tiny_model(), config)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)  # 0.5 per 1024 images, 8 x 128 here
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 2e-5]  # no decay on norm and bias
    train_tf, _ = build_transforms(config, timm.data.resolve_data_config(model=tiny_model()))
    assert "RandAugment" in str(train_tf) and "RandomErasing" in str(train_tf)


def test_options_on_the_command_line_override_the_recipe():
    config = resolve_config(parse("--recipe", "paper", "--epochs", "90", "--lr", "0.2", "--no-decay-norm-and-bias"))
    assert (config.epochs, config.lr, config.decay_norm_and_bias) == (90, 0.2, False)
    assert config.weight_decay == 1e-4  # untouched values keep the recipe's


def test_the_learning_rate_scales_linearly_for_sgd_and_by_the_square_root_for_adamw():
    sgd = resolve_config(parse("--recipe", "paper", "--batch-size", "64"), world_size=8)
    adamw = resolve_config(parse("--batch-size", "64", "--grad-accum-steps", "4"))
    assert build_optimizer(tiny_model(), sgd).param_groups[0]["lr"] == pytest.approx(0.2)
    assert build_optimizer(tiny_model(), adamw).param_groups[0]["lr"] == pytest.approx(2e-3 * 2)


def test_the_digits_split_is_fixed_stratified_and_disjoint():
    train, val = DigitsDataset("train"), DigitsDataset("val")
    assert (len(train), len(val)) == (1437, 360)
    assert np.bincount(val.targets).min() >= 35 and np.bincount(val.targets).max() <= 37
    assert val.images[0].size == (64, 64) and val.images[0].mode == "RGB"
    assert ([np.asarray(i).tobytes() for i in DigitsDataset("val").images]
            == [np.asarray(i).tobytes() for i in val.images])
    assert not {np.asarray(i).tobytes() for i in train.images} & {np.asarray(i).tobytes() for i in val.images}


# -- the run folder -------------------------------------------------------------------------------

def test_a_run_folder_holds_config_metrics_curves_tensorboard_and_the_best_model(tiny_run):
    rows = json.loads((tiny_run / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2] and all(0 <= r["val_top1"] <= 100 for r in rows)
    assert (tiny_run / "metrics.csv").read_text().splitlines()[0].split(",")[:6] == [
        "epoch", "lr", "train_loss", "val_loss", "val_top1", "val_top5"]
    assert json.loads((tiny_run / "run_config.json").read_text())["img_size"] == 16
    assert list((tiny_run / "tensorboard").glob("events.out.tfevents.*"))
    assert (tiny_run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["best_val_top1"] == max(r["val_top1"] for r in rows)
    config = json.loads((tiny_run / "best" / "config.json").read_text())
    assert config["architecture"] == "epsanet50_small" and config["num_classes"] == 3
    assert config["pretrained_cfg"]["input_size"] == [3, 16, 16]
    assert config["pretrained_cfg"]["label_names"] == ["0", "1", "2"]


def test_the_checkpoint_reads_back_with_weights_only(tiny_run):
    state = torch.load(tiny_run / "last.pth", map_location="cpu", weights_only=True)
    assert state["epoch"] == 2 and isinstance(state["config"], dict) and state["config"]["epochs"] == 2
    assert {"model", "optimizer", "scheduler", "scaler", "model_ema", "rng", "history", "best"} <= state.keys()
    assert len(state["rng"]) == 1 and {"torch", "cuda", "numpy", "python"} == state["rng"][0].keys()


def test_an_existing_run_is_not_overwritten_without_resume(tiny_run, digits_folder, capsys):
    before = (tiny_run / "last.pth").stat().st_mtime_ns
    assert main(train_args(digits_folder, tiny_run)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run" in err and "--resume" in err
    assert (tiny_run / "last.pth").stat().st_mtime_ns == before


def test_overwrite_replaces_an_existing_run(tiny_run, digits_folder, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(train_args(digits_folder, run, "--epochs", "1", "--overwrite")) == 0
    assert torch.load(run / "last.pth", weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in json.loads((run / "metrics.json").read_text())] == [1]
    assert json.loads((run / "summary.json").read_text())["epochs"] == 1


def test_the_exported_model_reloads_through_torch_hub_and_timm_with_the_same_outputs(tiny_run):
    best = tiny_run / "best"
    model_args = json.loads((best / "config.json").read_text())["model_args"]
    reference = epsanet.from_pretrained(best).eval()
    hub_model = torch.hub.load(str(REPO), "epsanet50_small", source="local", pretrained=True, **model_args,
                               pretrained_cfg_overlay=dict(file=str(best / "model.safetensors"), num_classes=3)).eval()
    timm_model = timm.create_model(f"local-dir:{best}", pretrained=True).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(hub_model(x), reference(x)) and torch.equal(timm_model(x), reference(x))


# -- evaluation -----------------------------------------------------------------------------------

def test_eval_on_an_image_folder_matches_an_independent_count(tiny_run, digits_folder, tmp_path, capsys):
    assert main(["eval", "--model", str(tiny_run / "best"), "--data", str(digits_folder), "--workers", "0",
                 "--output-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    model = timm.create_model(f"local-dir:{tiny_run / 'best'}", pretrained=True).eval()
    preprocess = transforms.Compose([transforms.Resize(16), transforms.CenterCrop(16), transforms.ToTensor(),
                                     transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    hits = {str(c): [] for c in CLASSES}
    with torch.no_grad():
        for digit in hits:
            for path in sorted((digits_folder / "val" / digit).glob("*.png")):
                logits = model(preprocess(Image.open(path).convert("RGB"))[None])
                hits[digit].append(logits.argmax().item() == int(digit))
    total = sum(len(h) for h in hits.values())
    assert report["images"] == total == len(CLASSES) * IMAGES_PER_CLASS
    assert report["top1"] == round(100 * sum(sum(h) for h in hits.values()) / total, 4)
    assert report["top5"] == 100.0  # three classes: the top-5 always holds the answer
    assert report["per_class_top1"] == {d: round(100 * sum(h) / len(h), 4) for d, h in hits.items()}
    assert report["images_per_second"] > 0
    assert json.loads((tmp_path / "results.json").read_text()) == report
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_of_a_training_checkpoint_reproduces_its_last_validation(tiny_run, digits_folder, tmp_path, capsys):
    assert main(["eval", "--model", str(tiny_run / "last.pth"), "--data", str(digits_folder), "--workers", "0",
                 "--output-dir", str(tmp_path), "--json"]) == 0
    last_epoch = json.loads((tiny_run / "metrics.json").read_text())[-1]
    report = json.loads(capsys.readouterr().out)
    assert (report["top1"], report["loss"]) == (last_epoch["val_top1"], last_epoch["val_loss"])


def test_eval_on_data_with_other_classes_is_a_one_line_error(tiny_run, tmp_path, capsys):
    assert main(["eval", "--model", str(tiny_run / "best"), "--data", "digits", "--workers", "0",
                 "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "predicts 3 classes but digits (val) has 10" in err


@pytest.fixture
def folder_with_a_corrupt_image(digits_folder, tmp_path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(digits_folder / "val", root / "val")
    good = next((root / "val" / "1").glob("*.png")).read_bytes()
    (root / "val" / "1" / "broken.png").write_bytes(good[: len(good) // 2])  # truncated
    return root


def test_a_corrupt_image_gives_a_one_line_error_naming_the_file(tiny_run, folder_with_a_corrupt_image, tmp_path,
                                                               capsys):
    assert main(["eval", "--model", str(tiny_run / "best"), "--data", str(folder_with_a_corrupt_image),
                 "--workers", "1", "--output-dir", str(tmp_path)]) == 2  # read in a loader worker process
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert str(folder_with_a_corrupt_image / "val" / "1" / "broken.png") in err and "--skip-corrupt" in err


def test_skip_corrupt_skips_and_counts_unreadable_images(tiny_run, folder_with_a_corrupt_image, tmp_path, capsys):
    assert main(["eval", "--model", str(tiny_run / "best"), "--data", str(folder_with_a_corrupt_image),
                 "--workers", "0", "--skip-corrupt", "--output-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["images"], report["skipped_images"]) == (len(CLASSES) * IMAGES_PER_CLASS, 1)


# -- runs that survive ----------------------------------------------------------------------------

def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(digits_folder, tmp_path):
    args = lambda out: train_args(digits_folder, out, "--workers", "1")  # noqa: E731
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    reference = subprocess.Popen([sys.executable, "-m", "epsanet", *args(tmp_path / "reference")], cwd=REPO,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    victim = subprocess.Popen([sys.executable, "-m", "epsanet", *args(tmp_path / "killed")], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in victim.stdout:
        if line.startswith("epoch 1/2"):
            epoch_seconds = float(re.search(r"([\d.]+) s$", line.strip()).group(1))
            break
    # Into epoch 2, well before its end. An epoch here takes about 0.4 s once warm and alone, while
    # epoch 1 paid the warm-up and shared the CPUs with the reference run: no fraction of it is safe.
    time.sleep(min(epoch_seconds / 20, 0.05))
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_state = torch.load(tmp_path / "killed" / "last.pth", weights_only=True)
    assert killed_state["epoch"] == 1  # killed before epoch 2 finished

    resumed = run_cli(*args(tmp_path / "killed"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout and "after epoch 1" in resumed.stdout
    assert reference.wait() == 0, reference.stderr.read()
    final = torch.load(tmp_path / "killed" / "last.pth", weights_only=True)
    expected = torch.load(tmp_path / "reference" / "last.pth", weights_only=True)
    assert final["epoch"] == expected["epoch"] == 2
    assert state_dicts_equal(final["model"], expected["model"])
    assert [r["train_loss"] for r in final["history"]] == [r["train_loss"] for r in expected["history"]]
    assert state_dicts_equal(load_file(tmp_path / "killed" / "best" / "model.safetensors"),
                             load_file(tmp_path / "reference" / "best" / "model.safetensors"))


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_run, digits_folder, tmp_path,
                                                                            capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    checkpoint = (run / "last.pth").read_bytes()
    assert main(train_args(digits_folder, run, "--epochs", "3", "--lr", "1e30", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "epoch 3: the training loss became" in err
    assert f"the last good checkpoint is {run / 'last.pth'} (after epoch 2)" in err
    assert (run / "last.pth").read_bytes() == checkpoint


# -- scale ----------------------------------------------------------------------------------------

def test_two_torchrun_processes_end_with_identical_weights(digits_folder, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(HELPERS / "ddp_train.py"), str(tmp_path),
               *train_args(digits_folder, out, "--epochs", "1", "--batch-size", "4", "--grad-accum-steps", "2",
                           "--amp", "bf16", "--channels-last", "--workers", "1", "--img-size", "32")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert state_dicts_equal(rank0, rank1)
    assert not torch.equal(rank0["fc.weight"], tiny_model().fc.weight)  # the weights did train
    config = json.loads((out / "run_config.json").read_text())
    assert (config["world_size"], config["global_batch_size"]) == (2, 16)
    assert state_dicts_equal(torch.load(out / "last.pth", weights_only=True)["model"], rank0)


def test_the_modern_recipe_trains_with_mixup_and_randaugment_and_exports_the_ema_weights(digits_folder, tmp_path):
    out = tmp_path / "modern"
    assert main(train_args(digits_folder, out, "--recipe", "modern", "--epochs", "1", "--warmup-epochs", "0",
                           "--model-ema-decay", "0.9")) == 0
    state = torch.load(out / "last.pth", weights_only=True)
    assert state["best"]["weights"] == "ema" and "ema_val_top1" in state["history"][0]
    ema_weights = {k.removeprefix("module."): v for k, v in state["model_ema"].items()}
    assert state_dicts_equal(load_file(out / "best" / "model.safetensors"), ema_weights)
    assert not state_dicts_equal(ema_weights, state["model"])


@pytest.mark.slow
def test_the_demo_reaches_95_percent_and_every_reload_route_agrees(tmp_path):
    from epsanet.training.demo import TARGET_TOP1, run_demo

    report = run_demo(str(tmp_path / "demo"), device="cpu")
    top1s = {r["top1"] for r in report["evaluations"].values()}
    assert len(top1s) == 1 and top1s.pop() >= TARGET_TOP1
    assert set(report["evaluations"]) == {"hub folder (epsanet eval)", "torch.hub.load", "timm.create_model"}


def test_a_channels_last_model_exports_as_a_hub_folder(tmp_path):
    model = tiny_model().to(memory_format=torch.channels_last).eval()
    epsanet.save_pretrained(model, tmp_path / "hub")
    reloaded = epsanet.from_pretrained(tmp_path / "hub").eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), model(x), atol=1e-6)

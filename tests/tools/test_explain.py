"""`epsanet explain` and epsanet.tools.explain: Grad-CAM overlays and grids for zoo models, where the CAM
looks, PSA scale weights against a hand computation, `epsanet train --explain-every`, bad input.

Models are tiny (one block per stage, narrow) and images small, so each test takes seconds."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from digits import train_args, write_digits_folder
from PIL import Image

import epsanet
from epsanet.cli import main
from epsanet.tools.explain import default_target_layer, explain, load_image, psa_scale_weights, save_png

pytest.importorskip("pytorch_grad_cam", reason="epsanet explain needs epsanet[explain]")

TINY = dict(layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16, psa_groups=(1, 1, 2, 4))
SIZE = 48  # overlay size in the tests


def tiny_epsanet(num_classes: int = 4, **kwargs) -> torch.nn.Module:
    model = epsanet.epsanet50_small(**TINY, num_classes=num_classes, zero_init_last=False, **kwargs)
    model.pretrained_cfg = dict(model.pretrained_cfg, input_size=(3, 32, 32), num_classes=num_classes,
                                label_names=tuple(f"class{i}" for i in range(num_classes)))
    return model.eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Hub folders of a tiny EPSANet and a tiny SE-ResNet (random weights), and a folder of
    images of several sizes and modes."""
    root = tmp_path_factory.mktemp("explain")
    torch.manual_seed(0)
    psa = epsanet.save_pretrained(tiny_epsanet(), root / "tiny-epsanet")
    se = epsanet.se_resnet50(layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16, num_classes=4)
    se.pretrained_cfg = dict(se.pretrained_cfg, input_size=(3, 32, 32), num_classes=4)
    se_folder = epsanet.save_pretrained(se, root / "tiny-se")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)).save(images / "rgb.jpg")
    Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8)).save(images / "gray.png")
    rgba = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    rgba[:32, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(images / "rgba.png")
    return psa, se_folder, images


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("epsanet explain: error: ")
    return err


# -- overlays and grids ---------------------------------------------------------------------------

def test_explain_writes_an_overlay_per_image_and_model_and_a_comparison_grid(folders, tmp_path, capsys):
    psa, se, images = folders
    out = tmp_path / "out"
    assert main(["explain", str(images), "--model", str(psa), "--model", str(se), "--out", str(out),
                 "--size", str(SIZE)]) == 0
    stdout = capsys.readouterr().out
    assert ("epsanet50_small (tiny-epsanet): Grad-CAM on layer layer2 (layer4, the last stage, has fewer than 4x4 "
            "cells at the model's 32x32 px input; layer2 is the last stage with that many") in stdout
    assert "se_resnet50 (tiny-se): Grad-CAM on layer layer2" in stdout
    for model_dir in ("epsanet50_small_tiny-epsanet", "se_resnet50_tiny-se"):
        overlays = sorted((out / model_dir).iterdir())
        assert [p.name for p in overlays] == ["gray.png", "rgb.png", "rgba.png"]
        for path in overlays:
            with Image.open(path) as overlay:
                assert overlay.format == "PNG" and overlay.mode == "RGB" and overlay.width == SIZE
                assert overlay.height > SIZE  # the top-5 band below the heatmap
    with Image.open(out / "grid.png") as grid:  # 3 columns (image, 2 models) x 3 rows
        assert grid.width > 3 * SIZE and grid.height > 3 * SIZE
    summary = json.loads((out / "explain.json").read_text())
    entry = summary["models"]["epsanet50_small (tiny-epsanet)"]
    assert entry["layer"] == "layer2"
    assert [Path(i["image"]).name for i in entry["images"]] == ["gray.png", "rgb.jpg", "rgba.png"]
    assert all(len(i["top5"]) == 4 and i["cam_class"] == i["top5"][0][0] for i in entry["images"])
    assert not [p for p in out.rglob(".*")]  # no temporary files left


def test_the_default_layer_is_the_last_stage_unless_its_map_is_smaller_than_4x4():
    assert default_target_layer(epsanet.epsanet50_small(device="meta")) == "layer4"  # 7x7 at 224 px
    assert default_target_layer(tiny_epsanet()) == "layer2"  # 32 px: layer4 1x1, layer3 2x2, layer2 4x4
    assert default_target_layer(epsanet.epsanet50_small(output_stride=8, device="meta")) == "layer4"


def test_explanations_cover_the_picture_with_a_unit_range_map(folders):
    model = epsanet.from_pretrained(folders[0])
    images = [load_image(p) for p in sorted(folders[2].iterdir())]
    assert [i.mode for i in images] == ["RGB"] * 3
    for method in ("gradcam", "gradcam++", "eigencam"):
        for e in explain(model, images, method=method, display_size=SIZE):
            assert e.image.shape == (SIZE, SIZE, 3) and e.cam.shape == (SIZE, SIZE)
            assert 0 <= e.image.min() and e.image.max() <= 1 and 0 <= e.cam.min() and e.cam.max() <= 1
            assert e.cam.max() > e.cam.min()
            assert e.overlay.dtype == np.uint8 and e.overlay.shape == (SIZE, SIZE, 3)
            probabilities = [p for _, p in e.top5]
            assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1)
    chosen = explain(model, images, target="class2", display_size=SIZE)
    assert {e.target for e in chosen} == {2} and {e.target_name for e in chosen} == {"class2"}


def test_transparent_pixels_are_shown_on_white(folders):
    image = np.asarray(load_image(folders[2] / "rgba.png"))
    assert (image[:32] == 255).all() and not (image[32:] == 255).all()


def test_a_png_is_written_atomically(tmp_path, monkeypatch):
    def fail_midway(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        save_png(Image.new("RGB", (8, 8)), tmp_path / "overlay.png")
    assert list(tmp_path.iterdir()) == []


# -- where the CAM looks --------------------------------------------------------------------------

STRIPES, CANVAS = 12, 48


def striped_images(count: int, generator: torch.Generator):
    """Noise images whose only signal is one STRIPES x STRIPES patch at a random place: stripes
    across (class 0) or down (class 1). Returns images in [0, 1], labels and patch corners."""
    x = torch.rand(count, 1, CANVAS, CANVAS, generator=generator) * 0.4 + 0.3
    labels = torch.randint(0, 2, (count,), generator=generator)
    stripes = (torch.arange(STRIPES) // 2 % 2).float()
    corners = []
    for i in range(count):
        r, c = torch.randint(0, CANVAS - STRIPES + 1, (2,), generator=generator).tolist()
        x[i, 0, r:r + STRIPES, c:c + STRIPES] = stripes[:, None] if labels[i] == 0 else stripes[None, :]
        corners.append((r, c))
    return x.expand(-1, 3, -1, -1).contiguous(), labels, corners


def test_the_cam_peaks_on_the_only_region_that_carries_the_signal():
    model = epsanet.epsanet50_small(**TINY, num_classes=2, output_stride=8)  # layer4: 6 x 6 cells of 8 px
    model.pretrained_cfg = dict(model.pretrained_cfg, input_size=(3, CANVAS, CANVAS), crop_pct=1.0,
                                mean=(0.5,) * 3, std=(0.25,) * 3, num_classes=2, label_names=("across", "down"))
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(12):  # the loss is below 0.05 by then
        x, y, _ = striped_images(16, generator)
        loss = F.cross_entropy(model((x - 0.5) / 0.25), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, y, corners = striped_images(12, torch.Generator().manual_seed(1))
    images = [Image.fromarray((image[0] * 255).round().byte().numpy()) for image in x]
    explanations = explain(model, images, display_size=CANVAS)
    assert [e.target for e in explanations] == y.tolist()  # it learned the task
    for e, (r, c) in zip(explanations, corners):
        inside = np.zeros_like(e.cam, dtype=bool)
        inside[r:r + STRIPES, c:c + STRIPES] = True
        peak = np.unravel_index(e.cam.argmax(), e.cam.shape)
        near = np.zeros_like(inside)
        near[max(r - 8, 0):r + STRIPES + 8, max(c - 8, 0):c + STRIPES + 8] = True  # within one 8 px cell
        assert near[peak], f"the CAM peaks at {peak}, the signal is at rows {r}..{r + STRIPES}, columns {c}.."
        assert e.cam[inside].mean() > 2 * e.cam[~inside].mean()


# -- PSA scale weights ----------------------------------------------------------------------------

def test_psa_weights_sum_to_one_over_the_branches_in_every_channel_of_every_block():
    model = tiny_epsanet()
    scales = psa_scale_weights(model, torch.randn(5, 3, 32, 32))
    assert scales.kernel_sizes == [3, 5, 7, 9] and scales.images == 5
    assert [(b.name, b.stage, b.block) for b in scales.blocks] == [
        ("layer1.0.conv2", "layer1", 0), ("layer2.0.conv2", "layer2", 0), ("layer3.0.conv2", "layer3", 0),
        ("layer4.0.conv2", "layer4", 0)]
    for block, channels in zip(scales.blocks, (16, 32, 64, 128)):
        assert block.weights.shape == (4, channels // 4)
        torch.testing.assert_close(block.weights.sum(0), torch.ones(channels // 4))
    assert list(scales.per_stage()) == ["layer1", "layer2", "layer3", "layer4"]


def test_psa_weights_match_a_hand_computation_and_the_reversed_order_of_the_forward_pass():
    model = tiny_epsanet()
    block = model.layer2[0].conv2
    captured = {}
    block.register_forward_hook(lambda m, inputs, output: captured.update(x=inputs[0], out=output))
    images = torch.randn(3, 3, 32, 32)
    weights = next(b for b in psa_scale_weights(model, images).blocks if b.name == "layer2.0.conv2").weights

    x, out, split = captured["x"], captured["out"], block.split
    se = block.se
    branches, scores = [], []
    for conv, kernel, groups in zip((block.conv_1, block.conv_2, block.conv_3, block.conv_4), (3, 5, 7, 9),
                                    block.groups):
        y = F.conv2d(x, conv.weight, None, block.stride, kernel // 2, 1, groups)
        hidden = F.relu(F.conv2d(y.mean((2, 3), keepdim=True), se.fc1.weight, se.fc1.bias))
        scores.append(torch.sigmoid(F.conv2d(hidden, se.fc2.weight, se.fc2.bias)).flatten(1))
        branches.append(y)
    by_hand = torch.softmax(torch.stack(scores, 1), dim=1)  # (N, 4 kernels, C/4)
    torch.testing.assert_close(weights, by_hand.mean(0))
    # The forward pass puts kernel 3's weighted branch last, kernel 9's first.
    for i, branch in enumerate(branches):
        chunk = out[:, (3 - i) * split:(4 - i) * split]
        torch.testing.assert_close(chunk, branch * by_hand[:, i, :, None, None], rtol=1e-4, atol=1e-5)


def test_psa_scales_are_written_as_json_and_a_chart(folders, tmp_path, capsys):
    psa, _, images = folders
    assert main(["explain", str(images / "rgb.jpg"), "--model", str(psa), "--psa-scales", "--size", str(SIZE),
                 "--out", str(tmp_path)]) == 0
    assert "layer4" in capsys.readouterr().out
    scales = json.loads((tmp_path / "psa_scales.json").read_text())["epsanet50_small (tiny-epsanet)"]
    assert scales["kernel_sizes"] == [3, 5, 7, 9] and scales["images"] == 1
    assert [s["stage"] for s in scales["stages"]] == ["layer1", "layer2", "layer3", "layer4"]
    assert all(sum(s["weights"]) == pytest.approx(1, abs=1e-5) for s in scales["stages"] + scales["blocks"])
    assert (tmp_path / "psa_scales.png").read_bytes()[:4] == b"\x89PNG"


# -- training ------------------------------------------------------------------------------------

def test_train_explain_every_saves_grids_and_the_export_explains(tmp_path):
    data = write_digits_folder(tmp_path / "digits", per_class=8)
    run = tmp_path / "run"
    assert main(train_args(data, run, "--explain-every", "2")) == 0  # two epochs: a grid after the second only
    assert [p.name for p in (run / "explain").iterdir()] == ["epoch_002.png"]
    with Image.open(run / "explain" / "epoch_002.png") as grid:
        assert grid.format == "PNG" and grid.width > 8 * 128  # eight validation images side by side
    out = tmp_path / "explained"
    assert main(["explain", str(data / "val" / "1"), "--model", str(run / "best"), "--size", str(SIZE),
                 "--out", str(out)]) == 0
    assert len(list((out / "epsanet50_small_best").glob("*.png"))) == 8


def test_explain_every_is_off_by_default():
    from epsanet.training import resolve_config

    assert resolve_config({}).explain_every == 0


# -- bad input ------------------------------------------------------------------------------------

def test_a_file_that_is_not_an_image_is_named_in_one_line(folders, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    assert main(["explain", str(notes), "--model", str(folders[0]), "--out", str(tmp_path / "out")]) == 2
    err = one_line_error(capsys)
    assert str(notes) in err and "not an image" in err
    assert not (tmp_path / "out").exists()


def test_a_missing_file_is_a_one_line_error(folders, tmp_path, capsys):
    assert main(["explain", str(tmp_path / "nope.png"), "--model", str(folders[0]), "--out", str(tmp_path)]) == 2
    assert "nope.png does not exist" in one_line_error(capsys)


def test_an_unknown_layer_is_a_one_line_error_with_suggestions(folders, tmp_path, capsys):
    assert main(["explain", str(folders[2] / "rgb.jpg"), "--model", str(folders[0]), "--layer", "layer5",
                 "--out", str(tmp_path)]) == 2
    err = one_line_error(capsys)
    assert "no layer 'layer5'" in err and "layer4" in err


def test_psa_scales_of_a_model_without_psa_is_a_one_line_error(folders, tmp_path, capsys):
    assert main(["explain", str(folders[2] / "rgb.jpg"), "--model", str(folders[1]), "--psa-scales",
                 "--out", str(tmp_path / "out")]) == 2
    assert "has no PSA modules" in one_line_error(capsys) and not (tmp_path / "out").exists()


def test_an_unknown_target_class_is_a_one_line_error(folders, tmp_path, capsys):
    assert main(["explain", str(folders[2] / "rgb.jpg"), "--model", str(folders[0]), "--target", "clas2",
                 "--out", str(tmp_path)]) == 2
    assert "did you mean 'class2'" in one_line_error(capsys)


def test_weights_must_follow_a_model(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["explain", "x.png", "--weights", "w.pth", "--model", "epsanet50_small", "--out", str(tmp_path)])
    assert "--weights applies to the --model before it" in capsys.readouterr().err


@pytest.mark.slow
def test_the_digits_demo_model_explains_with_psa_scales(tmp_path):
    from epsanet.training.data import DigitsDataset
    from epsanet.training.demo import run_demo

    report = run_demo(str(tmp_path / "demo"), device="cpu")
    images = tmp_path / "digits"
    images.mkdir()
    for i, image in enumerate(DigitsDataset("val").images[:10]):
        image.save(images / f"{i}.png")
    out = tmp_path / "explained"
    assert main(["explain", str(images), "--model", report["best_model"], "--psa-scales", "--out", str(out)]) == 0
    stages = json.loads((out / "psa_scales.json").read_text())["epsanet50_small (best)"]["stages"]
    assert len(stages) == 4 and all(sum(s["weights"]) == pytest.approx(1, abs=1e-5) for s in stages)

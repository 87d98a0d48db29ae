"""`epsanet predict` and `epsanet export` of a trained run: the weights' own preprocessing, image size and
class names (`source_info`), and every input accounted for."""
import json

import pytest
import torch
from digits import finished_run
from PIL import Image
from timm.data import ImageNetInfo
from torchvision import transforms

import epsanet
from epsanet.cli import main
from epsanet.hub.sources import load_model, source_info
from epsanet.tools.predict import find_images, predict


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("predict"))


def test_predict_gives_a_runs_class_names_with_its_own_preprocessing(run, capsys):
    run_dir, data = run
    images = sorted((data / "val" / "2").glob("*.png"))[:4]
    assert main(["predict", *map(str, images), "--model", str(run_dir), "--top-k", "3", "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    model = epsanet.from_pretrained(run_dir / "best").eval()
    # The run trained at 16 px with crop_pct 1.0: resize the short side to 16, centre crop 16.
    preprocess = transforms.Compose([
        transforms.Resize(16, interpolation=transforms.InterpolationMode.BILINEAR), transforms.CenterCrop(16),
        transforms.ToTensor(), transforms.Normalize(model.pretrained_cfg["mean"], model.pretrained_cfg["std"])])
    with torch.no_grad():
        expected = model(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in images])).softmax(1)
    assert [p["image"] for p in predictions] == [str(p) for p in images]
    for prediction, probabilities in zip(predictions, expected):
        top = probabilities.topk(3)
        assert [c["index"] for c in prediction["top_k"]] == top.indices.tolist()
        assert [c["label"] for c in prediction["top_k"]] == [str(i) for i in top.indices.tolist()]
        assert [c["probability"] for c in prediction["top_k"]] == pytest.approx(top.values.tolist(), abs=1e-5)


def test_predict_prints_a_table_of_a_folders_images(run, capsys):
    run_dir, data = run
    assert main(["predict", str(data / "val" / "0"), "--model", str(run_dir / "best"), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["| image | rank | class | probability |", "|---|---:|---|---:|"]
    assert len(lines) == 2 + 2 * len(find_images([data / "val" / "0"]))


def test_predict_sees_an_image_as_viewers_show_it_upright_and_on_white(run, tmp_path):
    run_dir, data = run
    model = epsanet.from_pretrained(run_dir / "best")
    digit = Image.open(sorted((data / "val" / "2").glob("*.png"))[0]).convert("RGB")
    digit.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the viewer turns the stored pixels 90 degrees clockwise
    digit.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "stored_sideways.png", exif=exif)
    on_white = digit.copy()
    on_white.paste((255, 255, 255), (0, 0, digit.width, digit.height // 2))
    on_white.save(tmp_path / "on_white.png")
    transparent = digit.convert("RGBA")
    transparent.paste((0, 0, 0, 0), (0, 0, digit.width, digit.height // 2))
    transparent.save(tmp_path / "transparent.png")

    def top(name):
        (prediction,) = predict(model, [tmp_path / name], top_k=3).predictions
        return prediction.top_k

    assert top("stored_sideways.png") == top("upright.png")
    assert top("transparent.png") == top("on_white.png")


def test_imagenet_weights_have_imagenet_names_and_other_weights_never_guess_them():
    imagenet = epsanet.se_resnet50(pretrained_cfg="a1_in1k", device="meta")
    assert source_info(imagenet).class_names == tuple(ImageNetInfo().label_descriptions())
    assert source_info(imagenet).class_names[1] == "goldfish, Carassius auratus"
    untagged = epsanet.epsanet50_small(device="meta")  # 1000 classes, but no ImageNet weights exist for it
    assert source_info(untagged).class_names[:2] == ("class 0", "class 1")


def test_model_info_reads_what_a_run_holds(run):
    run_dir, _ = run
    info = source_info(load_model(str(run_dir)))
    assert (info.architecture, info.num_classes, info.class_names) == ("epsanet50_small", 3, ("0", "1", "2"))
    assert (info.input_size, info.crop_pct, info.interpolation) == ((3, 16, 16), 1.0, "bilinear")
    assert info.mean == pytest.approx((0.485, 0.456, 0.406)) and info.std == pytest.approx((0.229, 0.224, 0.225))


def _unreadable_folder(root, data):
    """Two readable digits, a truncated PNG and a text file named .jpg."""
    folder = root / "mixed"
    folder.mkdir()
    for image in sorted((data / "val" / "1").glob("*.png"))[:2]:
        (folder / image.name).write_bytes(image.read_bytes())
    (folder / "cut.png").write_bytes((data / "val" / "1" / image.name).read_bytes()[:40])
    (folder / "notes.jpg").write_text("not an image\n")
    return folder


def test_predict_reports_every_unreadable_image_and_predicts_the_others(run, tmp_path):
    run_dir, data = run
    folder = _unreadable_folder(tmp_path, data)
    result = predict(epsanet.from_pretrained(run_dir / "best"), [folder])
    readable = sorted(str(p) for p in folder.glob("[0-9]*.png"))
    assert [p.image for p in result.predictions] == readable
    assert sorted(result.unreadable) == [str(folder / "cut.png"), str(folder / "notes.jpg")]
    assert all(reason.startswith(f"cannot read image {path} (") and reason.endswith("): replace or delete the file")
               for path, reason in result.unreadable.items())


def test_the_predict_command_names_each_unreadable_image_then_fails_with_one_summary_line(run, tmp_path, capsys):
    run_dir, data = run
    folder = _unreadable_folder(tmp_path, data)
    assert main(["predict", str(folder), "--model", str(run_dir), "--json"]) == 2
    out, err = capsys.readouterr()
    assert [p["image"] for p in json.loads(out)] == sorted(str(p) for p in folder.glob("[0-9]*.png"))
    *unreadable, summary = err.splitlines()
    assert [line.split(" (")[0] for line in unreadable] == [
        f"epsanet predict: cannot read image {folder / 'cut.png'}", f"epsanet predict: cannot read image "
                                                                    f"{folder / 'notes.jpg'}"]
    assert summary == (f"epsanet predict: error: 2 of 4 images could not be read: {folder / 'cut.png'}, "
                       f"{folder / 'notes.jpg'}")


def test_export_takes_a_training_run_and_reproduces_its_best_model(run, tmp_path, capsys):
    run_dir, _ = run
    assert main(["export", str(run_dir), str(tmp_path / "run.pt")]) == 0
    exported = torch.jit.load(str(tmp_path / "run.pt"))
    model = epsanet.from_pretrained(run_dir / "best").eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x), rtol=1e-4, atol=1e-5)


def test_export_of_a_checkpoint_with_another_head_says_to_pass_num_classes(tmp_path, capsys):
    model = epsanet.epsanet50_small(num_classes=10, layers=(1, 1, 1, 1))
    torch.save(model.state_dict(), tmp_path / "ten.pth")
    assert main(["export", "epsanet50_small", str(tmp_path / "m.pt"), "--checkpoint", str(tmp_path / "ten.pth"),
                 "--num-classes", "1000"]) == 2
    err = capsys.readouterr().err
    assert err == (f"epsanet export: error: checkpoint {tmp_path / 'ten.pth'} has a 10-class classifier (fc.weight "
                   "(10, 2048)), not 1000: pass --num-classes 10\n")
    assert not (tmp_path / "m.pt").exists()

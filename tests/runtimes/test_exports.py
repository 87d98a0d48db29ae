"""An export for OpenVINO or ONNX Runtime computes what the model computes, carries what the model
holds (classes, preprocessing, the PSA plans chosen in its runtime), and is served back from it."""
import json

import pytest
import torch
from common import relative_error
from digits import train_args, write_digits_folder
from torch import nn

import epsanet
from epsanet.cli import main
from epsanet.hub.sources import load_model, record_preprocessing, source_info
from epsanet.runtimes import plans as runtime_plans
from epsanet.runtimes.exported import export_for_runtime, load_export, metadata_path, serve
from epsanet.tools.predict import predict
from epsanet.training.data import build_dataset

RUNTIMES = [("openvino", ".xml"), ("onnxruntime", ".onnx")]
TINY = {"layers": (1, 1, 1, 1)}


def trained_looking(model: nn.Module) -> nn.Module:
    """``model`` with BatchNorms holding non-trivial statistics and affine parameters, in eval mode."""
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def tiny_epsanet(num_classes: int = 3) -> nn.Module:
    """EPSANet-50 Small with one block per stage, at 32 px, for classes named 0, 1, 2 (or, with
    another ``num_classes``, without class names)."""
    torch.manual_seed(0)
    model = trained_looking(epsanet.create_model("epsanet50_small", num_classes=num_classes, zero_init_last=False,
                                                 **TINY))
    if num_classes == 3:
        record_preprocessing(model, 32, 0.875, "bicubic", ["0", "1", "2"])
    return model


@pytest.mark.parametrize("runtime, suffix", RUNTIMES)
def test_an_export_computes_what_the_model_computes_at_any_batch_size(runtime, suffix, tmp_path):
    model = tiny_epsanet()
    export_for_runtime(model, tmp_path / f"m{suffix}", runtime, plans="rule")
    served = load_export(tmp_path / f"m{suffix}")
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert relative_error(served(x), model(x)) < 1e-5


@pytest.mark.parametrize("runtime, suffix, files", [
    ("openvino", ".xml", ["m.bin", "m.xml", "m.xml.json"]), ("onnxruntime", ".onnx", ["m.onnx", "m.onnx.json"])])
def test_an_export_writes_its_graph_and_metadata_and_nothing_else(runtime, suffix, files, tmp_path):
    export_for_runtime(tiny_epsanet(), tmp_path / f"m{suffix}", runtime, plans="rule")
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_the_metadata_holds_the_models_classes_preprocessing_and_the_check(tmp_path):
    model = tiny_epsanet()
    report = export_for_runtime(model, tmp_path / "m.xml", "openvino", plans="rule")
    metadata = json.loads(metadata_path(tmp_path / "m.xml").read_text())
    assert metadata == report.metadata
    info = source_info(model)
    assert (metadata["architecture"], metadata["class_names"], metadata["input_size"]) == (
        "epsanet50_small", ["0", "1", "2"], [3, 32, 32])
    assert (metadata["interpolation"], metadata["crop_pct"], metadata["mean"]) == ("bicubic", 0.875, list(info.mean))
    assert (metadata["runtime"], metadata["precision"], metadata["check"]["limit"]) == ("openvino", "fp32", 1e-4)
    assert metadata["check"]["relative_error"] < 1e-5


def test_a_served_export_is_the_same_model_to_source_info(tmp_path):
    model = tiny_epsanet()
    export_for_runtime(model, tmp_path / "m.xml", "openvino", plans="rule")
    assert source_info(load_export(tmp_path / "m.xml")) == source_info(model)


def test_an_export_at_another_size_records_that_size(tmp_path):
    export_for_runtime(tiny_epsanet(), tmp_path / "m.xml", "openvino", img_size=48, plans="rule")
    served = load_export(tmp_path / "m.xml")
    assert served.metadata["input_size"] == [3, 48, 48]
    assert served(torch.randn(1, 3, 48, 48)).shape == (1, 3)


@pytest.mark.parametrize("runtime, suffix", RUNTIMES)
def test_measured_plans_are_timed_in_the_runtime_recorded_and_exact(runtime, suffix, tmp_path):
    model = tiny_epsanet()
    report = export_for_runtime(model, tmp_path / f"m{suffix}", runtime, plans="measure")
    plans = report.metadata["plans"]
    assert plans["source"].startswith(f"measured in {runtime} ")
    stage1 = plans["shapes"][0]
    assert (stage1["modules"], stage1["input"]) == (["layer1.0.conv2"], [64, 8, 8])
    for branch in stage1["branches"]:
        if branch["times_ms"]:  # several candidates: the fastest was chosen
            chosen = f"{branch['method']} {branch['groups_to_run']}"
            assert branch["times_ms"][chosen] == min(branch["times_ms"].values())
    official = epsanet.create_model("epsanet50_small", num_classes=3, psa_layer="psa_reference", **TINY).eval()
    official.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert relative_error(load_export(tmp_path / f"m{suffix}")(x), official(x)) < 1e-5


def test_a_second_export_takes_the_plans_measured_by_the_first(tmp_path, monkeypatch):
    model = tiny_epsanet()
    first = export_for_runtime(model, tmp_path / "a.xml", "openvino", plans="measure")

    def refuse(*args, **kwargs):
        raise AssertionError("a plan was measured again")
    monkeypatch.setattr(runtime_plans, "time_interleaved", refuse)
    second = export_for_runtime(model, tmp_path / "b.xml", "openvino", plans="measure")
    assert second.metadata["plans"] == first.metadata["plans"]


def test_predict_from_an_export_gives_the_models_predictions(tmp_path):
    data = write_digits_folder(tmp_path / "digits")
    model = tiny_epsanet()
    export_for_runtime(model, tmp_path / "m.xml", "openvino", plans="rule")
    images = [data / "val"]
    from_torch = predict(model, images, top_k=2)
    from_openvino = predict(load_export(tmp_path / "m.xml"), images, top_k=2)
    assert [p.image for p in from_openvino.predictions] == [p.image for p in from_torch.predictions]
    for ours, theirs in zip(from_openvino.predictions, from_torch.predictions):
        assert [(i, name) for i, name, _ in ours.top_k] == [(i, name) for i, name, _ in theirs.top_k]


def test_serve_compiles_in_memory_what_an_export_would_write(tmp_path):
    model = tiny_epsanet()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert relative_error(serve(model, "onnxruntime", plans="rule")(x), model(x)) < 1e-5
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A digits folder (classes 0, 1, 2; 48 train and 48 val images), as datasets of PIL images."""
    root = write_digits_folder(tmp_path_factory.mktemp("calibration") / "digits")
    return build_dataset(root, "train"), build_dataset(root, "val")


@pytest.mark.parametrize("runtime, suffix", RUNTIMES)
def test_int8_reports_top1_before_and_after_on_the_held_out_images(runtime, suffix, digits, tmp_path):
    calibration, held_out = digits
    model = tiny_epsanet()
    report = export_for_runtime(model, tmp_path / f"m{suffix}", runtime, "int8", plans="rule",
                                calibration=calibration, held_out=held_out, max_accuracy_drop=None)
    accuracy = report.metadata["accuracy"]
    assert (accuracy["metric"], accuracy["images"], accuracy["calibration_images"]) == ("top-1", 48, 48)
    transform = source_info(model).transform()
    images = torch.stack([transform(image) for image, _ in held_out])
    with torch.no_grad():
        correct = (model(images).argmax(1) == torch.tensor(held_out.targets)).sum().item()
    assert accuracy["fp32"] == round(100 * correct / 48, 3)
    assert accuracy["drop"] == round(accuracy["fp32"] - accuracy["int8"], 3)
    assert load_export(tmp_path / f"m{suffix}")(images[:2]).shape == (2, 3)


def test_int8_without_labels_of_the_models_classes_measures_agreement_with_fp32(digits, tmp_path):
    calibration, held_out = digits
    model = tiny_epsanet(num_classes=5)  # classes "class 0" .. "class 4": the folder's 0, 1, 2 are not its labels
    report = export_for_runtime(model, tmp_path / "m.xml", "openvino", "int8", plans="rule",
                                calibration=calibration, held_out=held_out, max_accuracy_drop=None)
    assert report.metadata["accuracy"]["metric"] == "top-1 agreement with fp32"
    assert report.metadata["accuracy"]["fp32"] == 100.0


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """A tiny EPSANet trained on the digits folder (2 epochs at 16 px): well above chance."""
    root = tmp_path_factory.mktemp("trained")
    data = write_digits_folder(root / "digits")
    assert main(train_args(data, root / "run")) == 0
    return load_model(str(root / "run")).eval()


def test_int8_that_loses_more_top1_than_allowed_is_refused_and_writes_nothing(trained, digits, tmp_path):
    _, held_out = digits
    model = trained
    # Ranges calibrated on inputs a million times too large quantize every real activation to zero:
    # the int8 graph predicts one class for every image, a third of the balanced held-out set.
    blown_up = [(torch.full((3, 16, 16), 1e6), 0)] * 4
    with pytest.raises(RuntimeError, match=r"int8 loses .* points of top-1 .* more than "
                                                     r"--max-accuracy-drop 1: nothing written"):
        export_for_runtime(model, tmp_path / "m.xml", "openvino", "int8", plans="rule", calibration=blown_up,
                           held_out=held_out, max_accuracy_drop=1.0)
    assert list(tmp_path.iterdir()) == []


def test_int8_needs_calibration_images():
    with pytest.raises(ValueError, match="int8 needs calibration images: pass --calibration DATA"):
        export_for_runtime(tiny_epsanet(), "m.xml", "openvino", "int8")


@pytest.mark.parametrize("runtime, path, message", [
    ("openvino", "m.onnx", "openvino exports are [*].xml files: name the output m.xml"),
    ("onnxruntime", "m.xml", "onnxruntime exports are [*].onnx files: name the output m.onnx"),
])
def test_the_file_name_must_be_the_runtimes(runtime, path, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        export_for_runtime(tiny_epsanet(), tmp_path / path, runtime)


def test_onnx_runtime_has_no_bf16_and_says_where_it_is():
    with pytest.raises(ValueError, match="ONNX Runtime's CPU provider runs fp32 and int8, not bf16: use OpenVINO"):
        serve(tiny_epsanet(), "onnxruntime", "bf16")


def test_an_export_without_its_metadata_says_how_to_get_it(tmp_path):
    export_for_runtime(tiny_epsanet(), tmp_path / "m.onnx", "onnxruntime", plans="rule")
    metadata_path(tmp_path / "m.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="has no m.onnx.json beside it .*: export it with epsanet export"):
        load_export(tmp_path / "m.onnx")

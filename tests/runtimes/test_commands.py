"""`epsanet export` to OpenVINO and ONNX Runtime, `epsanet predict` from an export or a runtime, and
the runtime columns of `epsanet bench`, from the command line."""
import json

import pytest
import torch
from digits import finished_run

import epsanet
from epsanet.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("runtimes"))


@pytest.mark.parametrize("source", ["run folder", "hub folder"])
def test_export_to_openvino_says_what_it_wrote_and_checked(run, source, tmp_path, capsys):
    run_dir, _ = run
    model = run_dir if source == "run folder" else run_dir / "best"  # a run's best model is a hub folder
    assert main(["export", str(model), str(tmp_path / "m.xml"), "--plans", "rule"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / 'm.xml'} (openvino fp32, input N x 3 x 16 x 16; openvino matches the "
                          "model to ")
    assert out.endswith("; PSA plans rule; " + out.rsplit("; ", 1)[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml", "m.xml.json"]


def test_export_to_int8_prints_top1_before_and_after_on_the_held_out_split(run, tmp_path, capsys):
    run_dir, data = run
    assert main(["export", str(run_dir), str(tmp_path / "m.xml"), "--precision", "int8", "--calibration", str(data),
                 "--plans", "rule", "--max-accuracy-drop", "100"]) == 0
    out = capsys.readouterr().out
    metadata = json.loads((tmp_path / "m.xml.json").read_text())["accuracy"]
    assert (metadata["images"], metadata["calibration_images"]) == (48, 48)  # val/ measured, train/ calibrated
    assert f"; top-1 {metadata['fp32']:.2f}% fp32 -> {metadata['int8']:.2f}% int8 on 48 held-out images;" in out


def test_predict_from_an_openvino_export_gives_the_runs_predictions(run, tmp_path, capsys):
    run_dir, data = run
    main(["export", str(run_dir), str(tmp_path / "m.xml"), "--plans", "rule"])
    images = str(data / "val" / "1")
    capsys.readouterr()
    assert main(["predict", images, "--model", str(run_dir), "--json"]) == 0
    from_torch = json.loads(capsys.readouterr().out)
    assert main(["predict", images, "--model", str(tmp_path / "m.xml"), "--json"]) == 0
    from_openvino = json.loads(capsys.readouterr().out)
    assert [[(k["index"], k["label"]) for k in p["top_k"]] for p in from_openvino] == \
        [[(k["index"], k["label"]) for k in p["top_k"]] for p in from_torch]


def test_predict_with_a_runtime_compiles_the_model_there(run, capsys):
    run_dir, data = run
    images = str(data / "val" / "2")
    assert main(["predict", images, "--model", str(run_dir), "--json"]) == 0
    from_torch = json.loads(capsys.readouterr().out)
    assert main(["predict", images, "--model", str(run_dir), "--runtime", "onnxruntime", "--json"]) == 0
    from_onnxruntime = json.loads(capsys.readouterr().out)
    assert [p["top_k"][0]["index"] for p in from_onnxruntime] == [p["top_k"][0]["index"] for p in from_torch]


def test_predict_with_another_runtime_than_the_exports_says_so(run, tmp_path, capsys):
    run_dir, data = run
    main(["export", str(run_dir), str(tmp_path / "m.xml"), "--plans", "rule"])
    capsys.readouterr()
    assert main(["predict", str(data / "val"), "--model", str(tmp_path / "m.xml"), "--runtime", "onnxruntime"]) == 2
    assert capsys.readouterr().err == (f"epsanet predict: error: --model {tmp_path / 'm.xml'} is an openvino export: "
                                       "drop --runtime onnxruntime, or export the model for onnxruntime\n")


def test_bench_puts_a_runtime_beside_eager_pytorch(capsys):
    assert main(["bench", "epsanet50_small", "--openvino", "--img-size", "32", "--batch-sizes", "1",
                 "--train-batch-size", "0", "--repeats", "1", "--warmup", "0", "--no-reference", "--threads", "2"]) == 0
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")}
    assert {"resnet50 (torchvision)", "epsanet50_small", "resnet50 (torchvision) [openvino]",
            "epsanet50_small [openvino]"} <= set(rows)
    fp32_b1 = rows["epsanet50_small [openvino]"][3]
    assert "x resnet50, " in fp32_b1 and fp32_b1.endswith("x eager fp32)")


@pytest.mark.parametrize("img_size", [None, 32])
def test_onnx_export_of_a_run_takes_the_runs_image_size_unless_told_otherwise(run, img_size, tmp_path, capsys):
    import onnxruntime

    run_dir, _ = run
    size = img_size or 16  # the run trained at 16 px
    option = [] if img_size is None else ["--img-size", str(img_size)]
    assert main(["export", str(run_dir), str(tmp_path / "run.onnx"), *option]) == 0
    assert f"(onnxruntime fp32, input N x 3 x {size} x {size}; onnxruntime matches" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(tmp_path / "run.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, size, size]
    x = torch.randn(2, 3, size, size)
    model = epsanet.from_pretrained(run_dir / "best").eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), model(x),
                                   rtol=1e-4, atol=1e-4)

"""The epsanet command line."""
import importlib.metadata
import json
import platform

import pytest
import timm
import torch
import torchvision

import epsanet
import epsanet.commands.models
from epsanet.cli import main


def test_models_command_prints_measured_params_and_gmacs(capsys):
    assert main(["models", "epsanet50_*", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["epsanet50_small"]["params"] == 22_561_715 and rows["epsanet50_small"]["gmacs"] == 3.6
    assert rows["epsanet50_large"]["params"] == 30_100_094


def test_models_prints_a_plain_table_that_fits_80_columns(capsys):
    assert main(["models"]) == 0
    header, rule, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["model", "params", "GMACs@224", "paper", "top-1", "licence", "weights"]
    assert set(rule) == {"-", " "} and len(rows) == len(epsanet.list_models())
    assert max(len(line) for line in [header, rule, *rows]) <= 80
    small = next(row for row in rows if row.startswith("epsanet50_small "))
    assert small.split() == ["epsanet50_small", "22.6M", "3.60", "77.49", "MIT", "-"]
    se = next(row for row in rows if row.startswith("se_resnet50 "))
    assert se.split() == ["se_resnet50", "28.1M", "4.09", "76.71", "Apache-2.0", "4"]


def test_weights_prints_a_plain_table_that_fits_80_columns(capsys):
    assert main(["weights"]) == 0
    header, rule, *rows, note = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in [header, rule, *rows, note]) <= 80
    assert rows[0].split() == ["se_resnet50.a1_in1k", "81.102", "95.12", "288/1.0", "auto", "Apache-2.0"]
    sge = next(row for row in rows if row.startswith("sge_resnet50."))
    assert sge.endswith("224/0.875  by hand  no licence file")
    assert note == "weights fetched by hand: `epsanet weights --format markdown` says where from"


@pytest.mark.parametrize("command", ["models", "weights"])
def test_the_listings_spell_each_licence_one_way_in_every_format(command, capsys):
    spellings = set()
    for form in (["--format", "markdown"], ["--format", "json"], ["--json"]):
        assert main([command, *form]) == 0
        out = capsys.readouterr().out
        if "json" in form[-1]:
            spellings |= {row["license"] for row in json.loads(out)}
        else:
            spellings |= {line.split(" | ")[-2 if command == "models" else -1].strip(" |")
                          for line in out.splitlines()[2:]}
    assert spellings <= {"MIT", "Apache-2.0", "no licence file", "-"}


def test_a_bad_pattern_is_a_one_line_error(capsys):
    assert main(["models", "resnet*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no model matches 'resnet*'" in err


def test_bench_prints_one_table_with_ratios_and_writes_json_and_a_chart(capsys, tmp_path):
    args = ["bench", "epsanet50_small", "--img-size", "32", "--batch-sizes", "1", "--train-batch-size", "2",
            "--repeats", "1", "--warmup", "0", "--threads", "1",
            "--json", str(tmp_path / "bench.json"), "--chart", str(tmp_path / "bench.png")]
    assert main(args) == 0
    machine, blank, *table = capsys.readouterr().out.strip().splitlines()
    assert machine.startswith("CPU: ") and "1 threads" in machine and blank == ""
    assert table[0].startswith("| model | params (M) | GMACs | fp32 b1 ms | bf16+cl b1 ms | train fp32 b2 img/s |")
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| resnet50 (torchvision)", "| epsanet50_small", "| epsanet50_small (reference PSA)"]
    assert "x resnet50, " in table[3] and "x ref)" in table[3]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["machine"]["threads"] == 1 and report["img_size"] == 32 and report["machine"]["isa"]
    fast = report["models"][1]
    assert fast["params"] == 22_561_715 and fast["reference"] == "epsanet50_small (reference PSA)"
    assert set(fast["results"]) == {"fp32 b1", "bf16+cl b1", "train fp32 b2"}
    assert all(r["images_per_s"] > 0 and r["peak_mb"] > 0 and r["vs_reference"] > 0 for r in fast["results"].values())
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.png"]


def test_bench_with_an_unknown_model_is_a_one_line_error(capsys):
    assert main(["bench", "epsanet51"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'epsanet51'" in err


def test_export_writes_a_torchscript_model_with_folded_batchnorms(capsys, tmp_path):
    import torch

    assert main(["export", "se_resnet50", str(tmp_path / "m.pt"), "--num-classes", "7"]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    assert loaded(torch.randn(1, 3, 64, 64)).shape == (1, 7)
    names = {m.original_name for m in loaded.modules()}
    assert "Conv2d" in names and "BatchNorm2d" not in names


def test_export_to_an_unknown_format_is_a_one_line_error(capsys):
    assert main(["export", "epsanet50_small", "model.tflite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "name it *.xml (OpenVINO), *.onnx (ONNX Runtime) or *.pt (TorchScript)" in err


def test_version_names_the_package_and_the_libraries_it_runs_on(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == (
        f"epsanet {importlib.metadata.version('epsanet')} (torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, timm {timm.__version__}, Python {platform.python_version()})\n")


def _shape_mismatch(args):
    return torch.zeros(2, 3) @ torch.zeros(2, 3)


def _missing_key(args):
    return {"model": "epsanet50_small"}["architecture"]


@pytest.mark.parametrize("bug, last_frame", [(_shape_mismatch, "RuntimeError: mat1 and mat2 shapes cannot be "),
                                             (_missing_key, "KeyError: 'architecture'")])
def test_a_bug_in_a_command_shows_its_traceback_and_how_to_report_it(bug, last_frame, monkeypatch, capsys):
    monkeypatch.setattr(epsanet.commands.models, "run", bug)
    assert main(["models"]) == 1
    *traceback, error, report = capsys.readouterr().err.splitlines()
    assert traceback[0] == "Traceback (most recent call last):" and any(bug.__name__ in line for line in traceback)
    assert error.startswith(last_frame)
    assert report == (
        "epsanet models: this is a bug in epsanet, not a problem with your input: please report it at "
        "https://github.com/epsanet/epsanet/issues with the command, the traceback above and this line: "
        f"epsanet {importlib.metadata.version('epsanet')} (torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, timm {timm.__version__}, Python {platform.python_version()})")


def test_a_user_error_is_one_line_without_a_traceback(capsys):
    assert main(["export", "epsanet50_small", "m.onnx", "--img-size", "8"]) == 2
    assert capsys.readouterr().err == (
        "epsanet export: error: --img-size must be at least 32 (the models downsample 32x), got 8\n")

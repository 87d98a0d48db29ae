"""`epsanet convert`: checkpoints of other code bases into hub folders, strictly."""
import argparse
import os

import official_reference as ref
import pytest
import timm
import torch
import torchvision
from common import OFFICIAL
from safetensors.torch import load_file

import epsanet
from epsanet.cli import main
from epsanet.hub.convert import convert_checkpoint, detect_layout


def official_checkpoint_of(model: torch.nn.Module, path, arch: str):
    """Write ``model`` as the official training scripts (ECA-Net, CBAM, EPSANet main.py) save it:
    DataParallel keys under 'state_dict', with the script's bookkeeping around them."""
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 100, "arch": arch, "state_dict": state, "best_prec1": torch.tensor(77.42),
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0001, "momentum": 0.9, "params": [0, 1]}]}}, path)
    return path


def outputs_equal(a: torch.nn.Module, b: torch.nn.Module, size=(1, 3, 96, 80)) -> bool:
    x = torch.randn(*size)
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_a_timm_seresnet50_converts_into_se_resnet50_with_identical_logits(tmp_path):
    theirs = timm.create_model("seresnet50")
    # timm's train.py saves its arguments (an argparse.Namespace) next to the weights.
    torch.save({"epoch": 3, "arch": "seresnet50", "state_dict": theirs.state_dict(), "version": 2,
                "args": argparse.Namespace(model="seresnet50", lr=0.5)}, tmp_path / "checkpoint-3.pth.tar")
    conversion = convert_checkpoint(tmp_path / "checkpoint-3.pth.tar", "se_resnet50", tmp_path / "out")
    assert conversion.layout == "se" and conversion.num_params == 28_088_024
    assert outputs_equal(epsanet.from_pretrained(tmp_path / "out"), theirs)


def test_the_official_eca_checkpoint_converts_although_its_arch_field_says_se_resnet50(tmp_path):
    original = epsanet.eca_resnet50()
    source = official_checkpoint_of(original, tmp_path / "eca_resnet50_k3557.pth.tar", arch="se_resnet50")
    conversion = convert_checkpoint(source, "eca_resnet50", tmp_path / "out", tag="k3557_in1k")
    assert conversion.layout == "eca" and conversion.name == "eca_resnet50.k3557_in1k"
    converted = epsanet.eca_resnet50(weights=str(tmp_path / "out"))
    assert outputs_equal(converted, original)
    cfg = converted.pretrained_cfg
    assert cfg["tag"] == "k3557_in1k" and cfg["license"] == "mit" and cfg["origin_url"] == "https://github.com/BangguWu/ECANet"
    assert "converted by `epsanet convert` from eca_resnet50_k3557.pth.tar" in cfg["notes"][0]


def test_an_official_epsanet_checkpoint_converts_and_reproduces_the_official_logits(official_checkpoint, tmp_path):
    out = tmp_path / "epsanet50"
    source = official_checkpoint("epsanet50")
    assert main(["convert", str(source), "--model", "epsanet50_small", "--out", str(out)]) == 0
    model = epsanet.from_pretrained(out).eval()
    golden = load_file(OFFICIAL / "golden.safetensors")
    with torch.no_grad():
        actual = model(golden["input"]).double()
    assert ((actual - golden["epsanet50.logits"]).norm() / golden["epsanet50.logits"].norm()) < 1e-5


def test_a_checkpoint_with_another_head_keeps_its_number_of_classes(tmp_path):
    source = official_checkpoint_of(epsanet.eca_resnet50(num_classes=10), tmp_path / "digits.pth.tar", arch="eca")
    assert convert_checkpoint(source, "eca_resnet50", tmp_path / "out").num_classes == 10
    assert epsanet.from_pretrained(tmp_path / "out").fc.out_features == 10


def test_older_checkpoints_without_batchnorm_counters_convert(tmp_path):
    original = epsanet.eca_resnet50()
    state = {k: v for k, v in original.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": state}, tmp_path / "old.pth")
    convert_checkpoint(tmp_path / "old.pth", "eca_resnet50", tmp_path / "out")
    assert outputs_equal(epsanet.from_pretrained(tmp_path / "out"), original)


@pytest.mark.parametrize("model, layout", [("epsanet50_small", "epsanet"), ("eca_resnet50", "eca"),
                                           ("se_resnet50", "se")])
def test_layouts_are_recognised_by_their_keys(model, layout):
    assert detect_layout(epsanet.create_model(model, device="meta").state_dict()) == layout


def test_a_plain_resnet_is_recognised(tmp_path):
    assert detect_layout(torchvision.models.resnet50().state_dict()) == "resnet"


def test_converting_into_the_wrong_model_names_the_keys_and_the_model_that_fits(tmp_path, capsys):
    source = official_checkpoint_of(epsanet.eca_resnet50(), tmp_path / "eca.pth.tar", arch="se_resnet50")
    assert main(["convert", str(source), "--model", "se_resnet50", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "does not fit se_resnet50 (64 missing: layer1.0.se.fc1.weight" in err
    assert "16 unexpected: layer1.0.eca.conv.weight" in err and err.rstrip().endswith("it fits eca_resnet50")
    assert not (tmp_path / "out").exists()


def test_a_plain_resnet_needs_warm_start(tmp_path, capsys):
    torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "resnet50.pth")
    args = ["convert", str(tmp_path / "resnet50.pth"), "--model", "epsanet50_small", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "a plain bottleneck ResNet (torchvision / timm), without weights for epsanet50_small's attention modules: " \
           "initialise from it with --warm-start" in capsys.readouterr().err
    assert main(args + ["--warm-start"]) == 0
    assert "transplanted 99.95% of the 22,561,715 parameters" in capsys.readouterr().out
    assert "warm-started by epsanet.transplant" in epsanet.from_pretrained(tmp_path / "out").pretrained_cfg["notes"][0]


def test_an_existing_output_folder_is_kept_unless_forced(tmp_path, capsys):
    source = official_checkpoint_of(epsanet.eca_resnet50(), tmp_path / "eca.pth.tar", arch="eca")
    (tmp_path / "out").mkdir()
    args = ["convert", str(source), "--model", "eca_resnet50", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "already exists: choose another output folder, or replace it (--force)" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0 and (tmp_path / "out" / "model.safetensors").exists()


def test_an_unknown_tag_names_the_catalogue(tmp_path, capsys):
    source = official_checkpoint_of(epsanet.eca_resnet50(), tmp_path / "eca.pth.tar", arch="eca")
    args = ["convert", str(source), "--model", "eca_resnet50", "--tag", "v9_in1k", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "no catalogue entry eca_resnet50.v9_in1k: see `epsanet weights`" in capsys.readouterr().err


def test_a_file_that_is_not_the_catalogued_one_is_refused(tmp_path, monkeypatch):
    entry = epsanet.weights.catalogue.find_weights("eca_resnet50", "k3557_in1k")
    pinned = type(entry)(**{**entry.__dict__, "sha256": "ab" * 32})
    monkeypatch.setattr(epsanet.hub.convert, "find_weights", lambda model, tag: pinned)
    source = official_checkpoint_of(epsanet.eca_resnet50(), tmp_path / "eca.pth.tar", arch="eca")
    with pytest.raises(epsanet.HubError, match="is not the file of eca_resnet50.k3557_in1k .* download it again from https://drive"):
        convert_checkpoint(source, "eca_resnet50", tmp_path / "out", tag="k3557_in1k")


def test_unreadable_sources_are_one_line_errors_and_leave_nothing_behind(tmp_path, capsys):
    marker = tmp_path / "the payload ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch '{marker}'",))

    torch.save({"state_dict": Payload()}, tmp_path / "evil.pth.tar")
    data = official_checkpoint_of(epsanet.eca_resnet50(), tmp_path / "eca.pth.tar", arch="eca").read_bytes()
    (tmp_path / "truncated.pth.tar").write_bytes(data[: len(data) // 3])
    expected = {
        "evil.pth.tar": "holds Python code or objects (posix.system), which epsanet never runs",
        "truncated.pth.tar": "it is a damaged or truncated ZIP file (the format of torch.save), not written "
                             "completely",
        "missing.pth.tar": "does not exist: check the path",
    }
    for name, message in expected.items():
        assert main(["convert", str(tmp_path / name), "--model", "eca_resnet50", "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind, model", [("cbam", "cbam_resnet50"), ("bam", "bam_resnet50"), ("sge", "sge_resnet50")])
def test_official_attention_resnet_checkpoints_convert_into_their_catalogue_entry(kind, model, tmp_path):
    official = ref.random_state(ref.official_shapes(kind, (3, 4, 6, 3)), torch.Generator().manual_seed(0))
    path = tmp_path / f"{kind}.pth.tar"
    torch.save({"epoch": 90, "arch": "resnet", "state_dict": {f"module.{k}": v.float() for k, v in official.items()}},
               path)
    conversion = convert_checkpoint(path, model, tmp_path / "out", tag="official_in1k")
    assert conversion.layout == kind and conversion.name == f"{model}.official_in1k"
    loaded = epsanet.create_model(model)
    epsanet.load_checkpoint(loaded, path)
    assert outputs_equal(epsanet.from_pretrained(tmp_path / "out"), loaded)

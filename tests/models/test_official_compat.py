"""Official EPSANet checkpoints load and reproduce the official implementation's logits."""
import pytest
import torch
from common import OFFICIAL, relative_error
from safetensors.torch import load_file, save_file

import epsanet


@pytest.fixture(scope="module")
def golden():
    return load_file(OFFICIAL / "golden.safetensors")



@pytest.mark.parametrize("arch, builder", [("epsanet50", "epsanet50_small"), ("epsanet101", "epsanet101_small")])
def test_official_checkpoint_reproduces_the_official_logits(official_checkpoint, golden, arch, builder):
    model = epsanet.create_model(builder).eval()
    epsanet.load_checkpoint(model, official_checkpoint(arch))
    with torch.no_grad():
        assert relative_error(model(golden["input"]), golden[f"{arch}.logits"]) < 1e-5
        assert relative_error(model(golden["input_160x192"]), golden[f"{arch}.logits_160x192"]) < 1e-5


def test_state_dict_and_safetensors_sources_load_the_same_weights(official_checkpoint, tmp_path):
    ckpt = official_checkpoint("epsanet50")
    reference = epsanet.epsanet50_small()
    epsanet.load_checkpoint(reference, ckpt)
    plain = {k: v.clone() for k, v in reference.state_dict().items()}
    save_file(plain, tmp_path / "w.safetensors")
    torch.save(plain, tmp_path / "w.pth")
    for source in (plain, tmp_path / "w.safetensors", tmp_path / "w.pth"):
        model = epsanet.epsanet50_small()
        epsanet.load_checkpoint(model, source)
        assert all(torch.equal(v, plain[k]) for k, v in model.state_dict().items())


def test_a_wrong_architecture_names_missing_unexpected_and_conflicting_keys(official_checkpoint):
    with pytest.raises(epsanet.CheckpointMismatchError) as info:
        epsanet.load_checkpoint(epsanet.se_resnet50(device="meta"), official_checkpoint("epsanet50"))
    message = str(info.value)
    assert "\n" not in message
    assert "missing: layer1.0.conv2.weight" in message
    assert "unexpected: layer1.0.conv2.conv_1.weight" in message
    assert "epsanet convert" in message


def test_shape_conflicts_are_listed(official_checkpoint):
    expected = r"shape conflicts: layer1.0.conv1.weight \(64, 64, 1, 1\) vs model \(128, 64, 1, 1\)"
    with pytest.raises(epsanet.CheckpointMismatchError, match=expected):
        epsanet.load_checkpoint(epsanet.epsanet50_large(device="meta"), official_checkpoint("epsanet50"))


def test_non_strict_loading_skips_what_does_not_fit(official_checkpoint):
    model = epsanet.epsanet50_small(num_classes=10)
    missing, unexpected = epsanet.load_checkpoint(model, official_checkpoint("epsanet50"), strict=False)
    assert missing == ["fc.weight", "fc.bias"] and unexpected == []


def test_a_truncated_file_gives_a_one_line_error(official_checkpoint, tmp_path):
    data = official_checkpoint("epsanet50").read_bytes()
    broken = tmp_path / "broken.pth.tar"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read checkpoint .*broken.pth.tar.*download or save it again"):
        epsanet.load_checkpoint(epsanet.epsanet50_small(device="meta"), broken)


def test_a_pickle_that_carries_code_is_refused_not_run(tmp_path):
    marker = tmp_path / "the payload ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Payload()}, path)
    with pytest.raises(ValueError,
                       match=r"evil.pth holds Python code or objects \(io.open\), which epsanet never runs"):
        epsanet.load_checkpoint(epsanet.epsanet50_small(device="meta"), path)
    assert not marker.exists()


def test_a_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match="nowhere.pth does not exist"):
        epsanet.load_checkpoint(epsanet.epsanet50_small(device="meta"), "nowhere.pth")

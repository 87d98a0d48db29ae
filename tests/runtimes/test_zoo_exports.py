"""Every zoo model exports to OpenVINO and to int8, and the runtime computes what the model computes
(64 px inputs; the 101-layer models and the int8 sweep are marked slow)."""
import pytest
import torch
from common import relative_error

import epsanet
from epsanet.runtimes.exported import export_for_runtime, load_export


def zoo(slow_unless: set) -> list:
    return [pytest.param(name, marks=() if name in slow_unless else pytest.mark.slow) for name in epsanet.list_models()]


DEPTH_50 = {name for name in epsanet.list_models() if "101" not in name}
CALIBRATION = [(torch.randn(3, 64, 64), 0) for _ in range(8)]


@pytest.mark.parametrize("name", zoo(slow_unless=DEPTH_50))
def test_every_zoo_model_exports_to_openvino_and_computes_the_same(name, tmp_path):
    torch.manual_seed(0)
    model = epsanet.create_model(name).eval()
    report = export_for_runtime(model, tmp_path / "m.xml", "openvino", img_size=64, plans="rule")
    assert report.metadata["check"]["relative_error"] < 1e-5  # OpenVINO's output on a random batch, against torch


@pytest.mark.parametrize("name", zoo(slow_unless={"epsanet50_small", "epsanet50_large"}))
def test_every_zoo_model_exports_to_int8_in_openvino(name, tmp_path):
    torch.manual_seed(0)
    model = epsanet.create_model(name).eval()
    report = export_for_runtime(model, tmp_path / "m.xml", "openvino", "int8", img_size=64, plans="rule",
                                calibration=CALIBRATION[:4], held_out=CALIBRATION[4:], max_accuracy_drop=None)
    assert report.metadata["accuracy"]["images"] == 4
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(load_export(tmp_path / "m.xml")(x), model(x)) < 0.2

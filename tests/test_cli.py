"""The epsanet command line."""
import json

from epsanet.cli import main


def test_models_command_prints_measured_params_and_gmacs(capsys):
    assert main(["models", "epsanet50_*", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["epsanet50_small"]["params"] == 22_561_715 and rows["epsanet50_small"]["gmacs"] == 3.6
    assert rows["epsanet50_large"]["params"] == 30_100_094


def test_a_bad_pattern_is_a_one_line_error(capsys):
    assert main(["models", "resnet*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no model matches 'resnet*'" in err

"""Paths and comparisons every test folder uses."""
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
OFFICIAL = DATA / "official_epsanet"
HELPERS = Path(__file__).resolve().parent


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected||, computed in float64."""
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()

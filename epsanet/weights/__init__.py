"""The weight catalogue, ``catalogue.toml`` (read by :mod:`epsanet.catalogue`)."""
from pathlib import Path

CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")

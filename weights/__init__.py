"""The weight catalogue, shipped inside the package as ``epsanet.weights`` (see ``catalogue.toml``)."""
from pathlib import Path

CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")

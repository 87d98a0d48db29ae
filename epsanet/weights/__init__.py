"""Weights below the models: the catalogue of checkpoints that exist (``catalogue.toml``), reading
and checking checkpoint files, and downloading them through the Hugging Face Hub cache.

Nothing here imports a model: the builders in :mod:`epsanet.models` resolve ``weights=`` through
this package, as torchvision's builders go through ``models/_api.py``.
"""
from .catalogue import CATALOGUE_PATH, WeightsEntry, find_weights, list_pretrained, model_info, weights_entries
from .checkpoint import CheckpointMismatchError, load_checkpoint, read_state_dict
from .download import HubConfig, HubError, download_file, read_hub_config, sha256_of, verify_catalogue_file

__all__ = [
    "CATALOGUE_PATH", "WeightsEntry", "find_weights", "list_pretrained", "model_info", "weights_entries",
    "CheckpointMismatchError", "load_checkpoint", "read_state_dict", "HubConfig", "HubError", "download_file",
    "read_hub_config", "sha256_of", "verify_catalogue_file",
]

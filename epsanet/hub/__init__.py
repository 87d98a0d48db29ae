"""Models as files: hub folders on the Hugging Face Hub (:func:`save_pretrained`,
:func:`from_pretrained`, :func:`publish`), every other source a command accepts
(:func:`load_model`: zoo names, run folders, checkpoints), official and third-party checkpoints
(:func:`convert_checkpoint`) and ResNet weights grafted onto attention models (:func:`transplant`).
"""
from ..weights.download import (
    WEIGHTS_FILE,
    HubConfig,
    HubError,
    download_file,
    download_progress,
    load_catalogue_state_dict,
    pretrained_state_dict,
    read_hub_config,
    sha256_of,
    split_hub_id,
)
from .convert import convert_checkpoint
from .pretrained import from_pretrained, publish, save_pretrained
from .sources import load_model
from .warm_start import TransplantReport, transplant

__all__ = [
    "HubError", "HubConfig", "save_pretrained", "from_pretrained", "publish", "read_hub_config", "download_file",
    "split_hub_id", "pretrained_state_dict", "load_catalogue_state_dict", "download_progress", "sha256_of",
    "WEIGHTS_FILE", "load_model", "convert_checkpoint", "transplant", "TransplantReport",
]

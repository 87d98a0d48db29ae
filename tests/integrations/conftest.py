"""Importing Ultralytics replaces ``PIL.Image.open`` and ``torch.save`` for the whole process
(``ultralytics.utils.patches``: on an image PIL cannot identify, its ``Image.open`` tries to
install a HEIF plugin). The rest of the suite runs with the originals."""
import PIL.Image
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def restore_what_ultralytics_patches():
    image_open, torch_save = PIL.Image.open, torch.save
    yield
    PIL.Image.open, torch.save = image_open, torch_save

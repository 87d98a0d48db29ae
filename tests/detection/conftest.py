"""Shared set-up of the detection tests: a small generated shapes set, and one thread per test
process (detectors on tiny images are many small operations; on a shared 2-core machine, threads
contending for the cores make them several times slower, not faster)."""
import pytest
import torch

from epsanet.detection import make_shapes_dataset


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """The generated set at test size: 8 training and 4 validation images of 64 to 96 pixels."""
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", train_images=8, val_images=4,
                               image_size=(64, 96), seed=0)

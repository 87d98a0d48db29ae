"""What every training run shares, classification (``epsanet train``) and detection (``epsanet
detect train``) alike: the run folder and its lock, the resume policy, a checkpoint that holds
every process's random streams (a resumed run ends exactly as the uninterrupted one), the check
that the loss stays finite without a host synchronisation per step, the processes and devices,
and the precision. Each task brings its own model, data, step and evaluation.

The run folder's checkpoint is ``last.pth``, written atomically after every epoch; its ``epoch``
counts the epochs finished (1 after the first).
"""
import contextlib
import math
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import torch
from timm.utils import random_seed
from torch import nn
from tqdm import tqdm

from .._utils.errors import EpsanetError, InvalidArgumentError, PathExistsError
from .._utils.files import save_checkpoint
from .._utils.lock import LOCK_FILE, exclusive_folder
from .._utils.paths import Kind, path_kind, require_checkpoint, require_output_folder
from .distributed import Environment, all_reduce_sum, gather_objects, setup_environment, teardown_environment
from .state import capture_rng_state, restore_rng_state

__all__ = ["CHECKPOINT", "RUN_OPTIONS", "NonFiniteError", "RunFolder", "RunningSums", "start_run",
           "check_finite_weights"]

CHECKPOINT = "last.pth"

# The command-line options of a run, declared once for `epsanet train` and `epsanet detect train`
# (and --amp for the evaluations too).
RUN_OPTIONS: Dict[str, Dict[str, Any]] = {
    "--amp": dict(help="mixed precision: bf16, fp16 (CUDA; training scales the gradients) or auto = bf16 on CPU "
                       "and on GPUs that support it, else fp16 (default: off)",
                  nargs="?", const="auto", choices=["auto", "bf16", "fp16"]),
    "--resume": dict(help="continue a run: without a value, the run in --output-dir (or start it if it has no "
                          "checkpoint yet); with a value, that checkpoint", nargs="?", const="auto",
                     metavar="CHECKPOINT"),
    "--overwrite": dict(help="replace the run already in --output-dir (its files are deleted first)",
                        action="store_true"),
}


class NonFiniteError(EpsanetError, RuntimeError):
    """The training loss or the weights became NaN or infinite."""


@contextlib.contextmanager
def start_run(output_dir: Union[str, Path], *, resume: Optional[str], overwrite: bool, device: Optional[str],
              command: str) -> Iterator["RunFolder"]:
    """Join the processes (under torchrun), pick the device and hold ``output_dir`` for the run.

    The first process holds the folder (``.lock``) until the block ends: a second run on it is
    refused with a :class:`~epsanet._utils.lock.FolderInUseError` naming the holder. ``command``
    (``"epsanet train"``) is what the lock says holds it.
    """
    env = setup_environment(device)
    try:
        folder = RunFolder(output_dir, env, resume=resume, overwrite=overwrite)
        with folder.held(command):
            yield folder
    finally:
        teardown_environment(env)


class RunFolder:
    """A run's output folder, as the process of ``env`` sees it: what to continue from, its
    checkpoint, its one-line stops.

    Without ``resume``, a folder that already holds a run is refused, unless ``overwrite``
    replaces it. ``resume="auto"`` continues the run in the folder, or starts it when it has no
    checkpoint yet; any other ``resume`` is the checkpoint to continue from.
    """

    def __init__(self, path: Union[str, Path], env: Environment, *, resume: Optional[str] = None,
                 overwrite: bool = False) -> None:
        if resume is not None and overwrite:
            raise InvalidArgumentError("--resume continues the run in --output-dir and --overwrite replaces it: "
                                       "pass one of them")
        require_output_folder(path, "--output-dir")
        self.path = Path(path)
        self.env = env
        self.checkpoint = self.path / CHECKPOINT
        self.resume = resume
        self.overwrite = overwrite
        self.resume_from = self._resume_from()  # refused before anything is built or written

    def _resume_from(self) -> Optional[Path]:
        if self.resume is None:
            if self.checkpoint.exists() and not self.overwrite:
                raise PathExistsError(f"{self.path} already holds a run ({CHECKPOINT}): continue it with --resume, "
                                      "replace it with --overwrite, or choose another --output-dir")
            return None
        if self.resume == "auto":
            return self.checkpoint if self.checkpoint.exists() else None
        require_checkpoint(self.resume, "--resume")
        return Path(self.resume)

    @contextlib.contextmanager
    def held(self, command: str) -> Iterator["RunFolder"]:
        """The folder held by the first process inside the block (see :func:`start_run`); with
        ``overwrite``, the previous run's files are deleted once it is held."""
        if not self.env.is_main:
            yield self
            return
        with exclusive_folder(self.path, command):
            self.resume_from = self._resume_from()  # again: another run may have written it before it was held
            if self.overwrite and path_kind(self.path).kind is Kind.TRAINING_RUN:
                self._delete_run()
            yield self

    def _delete_run(self) -> None:
        for entry in self.path.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def log(self, message: str) -> None:
        """Print ``message`` once (on the first process), above any progress bar."""
        if self.env.is_main:
            tqdm.write(message)

    def save(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` with every process's random streams (``rng``, in rank order) as the
        folder's checkpoint, atomically. Every process calls it; the first one writes."""
        rng = gather_objects(capture_rng_state(), self.env)
        if self.env.is_main:
            save_checkpoint({**state, "rng": rng}, self.checkpoint)

    def restore_rng(self, state: Mapping[str, Any], seed: int) -> None:
        """Continue this process's random streams where the checkpoint ``state`` left them; a
        checkpoint written by another number of processes reseeds them from ``seed`` and its epoch."""
        rng: Sequence[Dict[str, Any]] = state["rng"]
        if len(rng) == self.env.world_size:
            restore_rng_state(rng[self.env.rank])
            return
        self.log(f"{self.resume_from} was written by {len(rng)} processes, not {self.env.world_size}: random "
                 "streams restart from the seed (the result will differ from an uninterrupted run)")
        random_seed(seed + state["epoch"], self.env.rank)

    @contextlib.contextmanager
    def stops_on_non_finite(self, epoch: int) -> Iterator[None]:
        """Inside the block, epoch ``epoch`` (from 0) runs; a :class:`NonFiniteError` raised there
        becomes the run's one-line stop, naming the epoch and the checkpoint to continue from."""
        try:
            yield
        except NonFiniteError as e:
            kept = f"the last good checkpoint is {self.checkpoint} (after epoch {epoch}), continue from it with " \
                "--resume" if epoch > 0 else "no checkpoint was written"
            raise NonFiniteError(f"epoch {epoch + 1}: {e}; {kept}") from None


class RunningSums:
    """Per-step values (the loss first) summed on the device, so that adding them costs no host
    synchronisation; :meth:`totals` reads them at log intervals and at the end of an epoch."""

    def __init__(self, env: Environment, names: Sequence[str] = ()) -> None:
        self.env = env
        self.names: List[str] = list(names)
        self.sums: Optional[torch.Tensor] = None

    def add(self, values: Mapping[str, Union[torch.Tensor, float]]) -> None:
        """Add one step's ``values``; the first call fixes the names when none were given."""
        if self.sums is None:
            self.names = self.names or list(values)
            self.sums = torch.zeros(len(self.names), dtype=torch.float64, device=self.env.device)
        self.sums += torch.stack([torch.as_tensor(values[name], dtype=torch.float64, device=self.env.device)
                                  for name in self.names])

    def totals(self, step: int, fix: str) -> Dict[str, float]:
        """The sums over all processes so far. A loss sum that is not finite after step ``step``
        (from 0) raises :class:`NonFiniteError` saying ``fix``; every process sees the same sums,
        so all stop together."""
        if self.sums is None:
            return {name: 0.0 for name in self.names}
        totals = dict(zip(self.names, all_reduce_sum(self.sums.clone(), self.env).tolist()))
        loss = totals[self.names[0]]
        if not math.isfinite(loss):
            raise NonFiniteError(f"the training loss became {loss} by step {step + 1} ({fix})")
        return totals


def check_finite_weights(model: nn.Module, fix: str) -> None:
    """Raise :class:`NonFiniteError` saying ``fix`` when a weight of ``model`` is NaN or infinite."""
    if not torch.stack([p.isfinite().all() for p in model.parameters()]).all():
        raise NonFiniteError(f"the weights became non-finite while the loss stayed finite ({fix})")

"""What a run reports: per-epoch metrics as JSON, CSV and TensorBoard scalars; loss and
accuracy curves and confusion matrices as PNG; JSON files written atomically."""
import csv
import io
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch

from .._utils.files import atomic_file, write_json, write_text
from .._utils.optional import require

__all__ = ["MetricsLog", "plot_curves", "plot_confusion_matrix", "require_reporting"]

PathLike = Union[str, os.PathLike]


class MetricsLog:
    """The per-epoch metrics of a run: ``metrics.json`` (a list of rows), ``metrics.csv`` and
    TensorBoard scalars under ``tensorboard/`` (step = epoch).

    ``history`` holds the rows of a resumed run so far; TensorBoard events of later epochs (left
    by a run killed mid-epoch) are purged.
    """

    def __init__(self, directory: PathLike, history: Sequence[Mapping[str, Any]] = ()) -> None:
        require("tensorboard", "train", "TensorBoard logging")
        from torch.utils.tensorboard import SummaryWriter

        self.directory = Path(directory)
        self.rows: List[Dict[str, Any]] = [dict(row) for row in history]
        self.writer = SummaryWriter(str(self.directory / "tensorboard"), purge_step=len(self.rows) + 1)

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, global_step=row["epoch"])
        self.writer.flush()
        write_json(self.directory / "metrics.json", self.rows)
        columns = list(dict.fromkeys(key for r in self.rows for key in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.directory / "metrics.csv", buffer.getvalue())

    def close(self) -> None:
        self.writer.close()


def require_reporting(training: bool) -> None:
    """Check before any work that the optional dependencies of the reports are installed, so that
    a training run (curves, TensorBoard) or an evaluation (confusion matrix) does not fail at the end."""
    require("matplotlib", "train", "plotting")
    if training:
        require("tensorboard", "train", "TensorBoard logging")
    else:
        require("sklearn.metrics", "train", "the confusion matrix plot")


def _pyplot():
    matplotlib = require("matplotlib", "train", "plotting")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: Sequence[Mapping[str, Any]], path: PathLike) -> Path:
    """Loss (training and validation) and validation top-1/top-5 per epoch, side by side."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_ax.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    for key, label in (("val_top1", "top-1"), ("val_top5", "top-5"), ("ema_val_top1", "EMA top-1")):
        if all(key in r for r in rows):
            acc_ax.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_confusion_matrix(matrix: torch.Tensor, class_names: Sequence[str], path: PathLike,
                          title: Optional[str] = None) -> Path:
    """The confusion matrix (rows: true class, columns: predicted) with scikit-learn's display."""
    ConfusionMatrixDisplay = require("sklearn.metrics", "train", "the confusion matrix plot").ConfusionMatrixDisplay
    plt = _pyplot()
    size = max(5.0, 0.3 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(matrix.cpu().numpy(), display_labels=list(class_names)).plot(
        ax=ax, include_values=len(class_names) <= 20, colorbar=False, xticks_rotation="vertical")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _save(fig, path: PathLike) -> Path:
    try:
        fig.tight_layout()
        with atomic_file(path, suffix=Path(path).suffix) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        _pyplot().close(fig)
    return Path(path)

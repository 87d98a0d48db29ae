"""Training and evaluation: ``epsanet train`` / ``epsanet eval`` (and ``train/train.py`` /
``eval/eval.py`` under ``torchrun``) are thin layers over these functions.

    from epsanet.training import resolve_config, train, evaluate_model

    result = train(resolve_config({"data": "digits"}))          # the embedded default
    report = evaluate_model(str(result.best_dir), "digits")      # top-1/top-5, per class, img/s
"""
from .config import RECIPES, TrainConfig, add_train_arguments, resolve_config
from .engine import TrainResult, train
from .evaluation import EvalResult, evaluate, evaluate_model
from .run import NonFiniteError

__all__ = [
    "RECIPES", "TrainConfig", "add_train_arguments", "resolve_config", "NonFiniteError", "TrainResult",
    "train", "EvalResult", "evaluate", "evaluate_model",
]

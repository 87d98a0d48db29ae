"""``epsanet train``: train a zoo model; with no arguments, the embedded digits default."""
import argparse

from ..training.config import add_train_arguments, resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from timm.utils import world_info_from_env

    from ..training import train

    train(resolve_config(vars(args), world_size=world_info_from_env()[2]))
    return 0

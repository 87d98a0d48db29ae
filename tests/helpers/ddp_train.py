"""Run by tests/training/test_training.py under torchrun: train as the `epsanet train ...` command line
given says, then every process saves the weights of its own model to OUT/rank<N>.safetensors.

    torchrun --nproc_per_node 2 tests/helpers/ddp_train.py OUT train --data ... --epochs 1
"""
import sys

from safetensors.torch import save_file
from timm.utils.distributed import world_info_from_env

from epsanet.cli import build_parser
from epsanet.training import resolve_config, train

if __name__ == "__main__":
    out, argv = sys.argv[1], sys.argv[2:]
    _, rank, world_size = world_info_from_env()
    result = train(resolve_config(vars(build_parser().parse_args(argv)), world_size=world_size))
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, f"{out}/rank{rank}.safetensors")

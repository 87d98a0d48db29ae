"""torch.hub entrypoints, one per zoo model.

    model = torch.hub.load("<owner>/epsanet", "epsanet50_small")             # from GitHub
    model = torch.hub.load("path/to/epsanet", "epsanet50", source="local")   # from a clone
    model = torch.hub.load(..., "se_resnet50", weights="IMAGENET1K_A1")      # pretrained
    model = torch.hub.load(..., "epsanet50_small", weights="hf-hub:ORG/NAME")  # published weights

Keyword arguments go to the builder (``weights``, ``num_classes``, ``drop_path_rate``, ...).
"""
dependencies = ["torch", "torchvision", "timm", "safetensors", "huggingface_hub"]

from epsanet.models import (  # noqa: E402,F401
    bam_resnet50,
    bam_resnet101,
    cbam_resnet50,
    cbam_resnet101,
    coord_resnet50,
    eca_resnet50,
    eca_resnet101,
    ema_resnet50,
    epsanet50,
    epsanet50_large,
    epsanet50_small,
    epsanet101,
    epsanet101_large,
    epsanet101_small,
    gam_resnet50,
    polarized_resnet50,
    polarized_seq_resnet50,
    sa_resnet50,
    sa_resnet101,
    se_resnet50,
    se_resnet101,
    sge_resnet50,
    sge_resnet101,
)

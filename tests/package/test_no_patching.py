"""``import epsanet`` registers its models through timm's and torchvision's registries and patches
nothing: every name of timm, torchvision, torch and huggingface_hub keeps its object.

Checked in a fresh interpreter, which imports those libraries first, holds every attribute of
every module they loaded, imports epsanet, and compares.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RUNNER = r"""
import json, sys

import huggingface_hub, safetensors.torch, timm, timm.models._factory, timm.models._hub, torch, torchvision

LIBRARIES = ("timm", "torchvision", "torch", "huggingface_hub", "safetensors")
before = {(name, attribute): value for name, module in list(sys.modules.items())
          if module is not None and name.partition(".")[0] in LIBRARIES
          for attribute, value in list(vars(module).items())}

import epsanet

after = {name: vars(module) for name, module in sys.modules.items() if module is not None}
load_config = timm.models._factory.load_model_config_from_hf
print(json.dumps({
    "rebound": sorted(f"{name}.{attribute}" for (name, attribute), value in before.items()
                      if after[name].get(attribute, value) is not value),
    "load_config": [load_config.__module__, load_config is timm.models._hub.load_model_config_from_hf],
    "registered": "epsanet50_small" in timm.list_models() and "epsanet50_small" in torchvision.models.list_models(),
}))
"""


def test_import_epsanet_rebinds_no_name_of_the_libraries_it_builds_on():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", RUNNER], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rebound"] == []
    assert result["load_config"] == ["timm.models._hub", True]  # timm's own hf-hub config reader
    assert result["registered"]

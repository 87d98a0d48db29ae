"""pytest plugin for timm's ``tests/test_models.py``: registers the epsanet zoo with timm before
collection and keeps only the tests of the models named in ``EPSANET_TIMM_MODELS`` (commas),
including their tagged variants (``se_resnet50.a1_in1k``)."""
import os

import epsanet  # noqa: F401  (registers the zoo with timm)


def pytest_collection_modifyitems(config, items):
    wanted = set(os.environ["EPSANET_TIMM_MODELS"].split(","))
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        name = params.params.get("model_name", "") if params else ""
        (keep if name.split(".")[0] in wanted else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep

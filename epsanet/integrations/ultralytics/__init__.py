"""The zoo's attention modules, EPSANet's PSA and zoo backbones inside Ultralytics YOLO model YAMLs.

    import epsanet.integrations.ultralytics as ey     # registers the YAML names (ey.register())
    from ultralytics import YOLO
    model = YOLO(ey.model_yaml("yolo11n-ema"))         # or your own YAML: [-1, 1, EMAModule, []]
    model.train(data="data/shapes-yolo/data.yaml", epochs=30, imgsz=160, device="cpu")

Ultralytics is AGPL-3.0 and optional (``pip install 'epsanet[yolo]'``): ``import epsanet`` never
imports it. YAML names: ``SEModule``, ``ECAModule``, ``CBAMModule``, ``BAMModule``,
``ShuffleAttentionModule``, ``PolarizedAttentionModule``, ``SequentialPolarizedAttentionModule``,
``SGEModule``, ``CoordAttentionModule``, ``GAMModule``, ``EMAModule`` (channel count inferred from
the previous layer, YAML args after it), ``PSAModule`` and ``PSAConv`` (convolution replacements),
``C3k2EPSA`` (C3k2 with EPSA bottlenecks) and ``EpsanetBackbone`` (any zoo model's P3-P5). See
:mod:`.hook` for how the parser is extended, :func:`use_local_fonts` for offline training.
"""
import re
import shutil
from pathlib import Path
from typing import List

from ..._utils.errors import InvalidArgumentError
from ..._utils.optional import require

require("ultralytics", "yolo", "epsanet.integrations.ultralytics")

from ultralytics.utils import USER_CONFIG_DIR  # noqa: E402

from ..._utils.files import atomic_file  # noqa: E402
from .hook import checkpoint_classes, is_registered, register, yaml_names  # noqa: E402
from .modules import *  # noqa: E402,F401,F403
from .modules import __all__ as _modules_all  # noqa: E402

__all__ = ["register", "is_registered", "yaml_names", "checkpoint_classes", "model_yaml", "list_model_yamls",
           "use_local_fonts", "CFG_DIR", *_modules_all]

CFG_DIR = Path(__file__).resolve().parent / "cfg"
# Ultralytics' font check (run on every dataset check, even with plots=False) asks GitHub for
# these names unless it finds them in its settings folder.
_ULTRALYTICS_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")
_SCALED = re.compile(r"^(yolo\d+)(-.+)$")  # a shipped file's stem: yolo11-ema
_WITH_SCALE = re.compile(r"(yolo\d+)([nslmx])(-.+)")  # the name given to Ultralytics: yolo11n-ema

register()


def list_model_yamls() -> List[str]:
    """Names of the shipped model YAMLs at the nano scale (``yolo11n-ema``, ...); any scale letter
    (n, s, m, l, x) can replace the ``n``."""
    return sorted(_SCALED.sub(r"\1n\2", path.stem) for path in CFG_DIR.glob("*.yaml"))


def model_yaml(name: str) -> str:
    """The path to give ``ultralytics.YOLO`` for a shipped model YAML: ``model_yaml("yolo11s-ema")``.

    The files carry no scale letter (``yolo11-ema.yaml`` holds every scale): Ultralytics reads the
    scale from the name it is given and opens the file without the letter.
    """
    stem = name[:-5] if name.endswith(".yaml") else name
    match = _WITH_SCALE.fullmatch(stem)
    if match is None or not (CFG_DIR / f"{match[1]}{match[3]}.yaml").is_file():
        raise InvalidArgumentError(f"no shipped model YAML {name!r}: choose one of {', '.join(list_model_yamls())} "
                                   "(with n, s, m, l or x as the scale)")
    return str(CFG_DIR / f"{stem}.yaml")


def use_local_fonts() -> List[Path]:
    """Copy matplotlib's DejaVu Sans into Ultralytics' settings folder under the font names
    Ultralytics looks for, so that its font check finds them there instead of requesting them from
    GitHub (which it does, even with ``YOLO_OFFLINE=1`` and ``plots=False``, whenever it checks a
    dataset). Plots are then drawn in DejaVu Sans. Returns the files written (none if present)."""
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    written = []
    for name in _ULTRALYTICS_FONTS:
        target = Path(USER_CONFIG_DIR) / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(target) as tmp:
                shutil.copyfile(source, tmp)
            written.append(target)
    return written

"""What a path given by a user is, told by its content (never by its name alone), and the one true
line to say when it is not what a command needs.

:func:`path_kind` looks at a path once: missing, a folder (hub folder, training run or plain),
unreadable, or a file recognised by its first bytes (a PyTorch checkpoint in the zip or legacy
pickle format, safetensors, a TorchScript or ONNX model, an image, text, ...).
The ``require_*`` functions (:func:`require_existing`, :func:`require_checkpoint`,
:func:`require_folder`, :func:`require_output_folder`) raise the error a command shows in one
line: :class:`PathNotFoundError` for a missing path, :class:`PathPermissionError` for an unreadable one,
:class:`WrongKindError` for a path of the wrong kind and :class:`PathExistsError` for an output folder
that is a file, each naming what the path is and what to pass instead.
"""
import enum
import json
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .errors import EpsanetError, PathExistsError, PathNotFoundError, PathPermissionError

__all__ = [
    "Kind", "PathKind", "WrongKindError", "looks_like_path", "path_kind", "require_checkpoint", "require_existing",
    "require_folder", "require_output_folder",
    "CHECKPOINT_SUFFIXES", "IMAGE_SUFFIXES",
]

PathLike = Union[str, os.PathLike]
CHECKPOINT_SUFFIXES = ".pth/.pth.tar/.pt/.bin/.safetensors"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_SNIFF_BYTES = 4096


class WrongKindError(EpsanetError, ValueError):
    """A path exists but is not the kind of file or folder a command needs."""


class Kind(enum.Enum):
    MISSING = "missing"
    UNREADABLE = "unreadable"
    FOLDER = "folder"
    HUB_FOLDER = "hub folder"
    TRAINING_RUN = "training run"
    TORCH_ZIP = "torch zip checkpoint"
    TORCH_PICKLE = "torch pickle checkpoint"
    SAFETENSORS = "safetensors"
    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    IMAGE = "image"
    TEXT = "text"
    EMPTY = "empty"
    ARCHIVE = "archive"
    DAMAGED = "damaged"
    BINARY = "binary"


CHECKPOINT_KINDS = (Kind.TORCH_ZIP, Kind.TORCH_PICKLE, Kind.SAFETENSORS)
FOLDER_KINDS = (Kind.FOLDER, Kind.HUB_FOLDER, Kind.TRAINING_RUN)


@dataclass(frozen=True)
class PathKind:
    """What a path is: ``kind``, and ``description``, words that complete "<path> is ..."."""

    path: Path
    kind: Kind
    description: str

    @property
    def is_checkpoint(self) -> bool:
        return self.kind in CHECKPOINT_KINDS

    @property
    def is_folder(self) -> bool:
        return self.kind in FOLDER_KINDS


# (first bytes, description) of image formats PIL reads.
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
_ARCHIVE_MAGIC = ((b"\x1f\x8b", "a gzip file"), (b"BZh", "a bzip2 file"), (b"\xfd7zXZ\x00", "an xz file"),
                  (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"), (b"%PDF", "a PDF document"))


def looks_like_path(value: PathLike) -> bool:
    """Whether ``value``, given where a name or a path is accepted (``weights=``, ``--model``), is
    meant as a path: an ``os.PathLike``, or a string with a path separator, starting with ``.`` or
    ``~``, or ending like a checkpoint file. ``hf-hub:org/name`` ids are not paths."""
    if isinstance(value, os.PathLike):
        return True
    if value.startswith("hf-hub:"):
        return False
    return (any(sep in value for sep in ("/", os.sep)) or value.startswith((".", "~"))
            or value.endswith((".pth", ".tar", ".pt", ".bin", ".safetensors")))


def path_kind(path: PathLike) -> PathKind:
    """What ``path`` is, from the file system and the file's first bytes."""
    path = Path(path)
    if not os.path.lexists(path):
        return PathKind(path, Kind.MISSING, "missing")
    if not path.exists():
        return PathKind(path, Kind.MISSING, f"a broken link (to {os.readlink(path)})")
    if path.is_dir():
        return _folder_kind(path)
    if not path.is_file():
        return PathKind(path, Kind.BINARY, "not a regular file (a device, socket or pipe)")
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except PermissionError:
        return PathKind(path, Kind.UNREADABLE, "not readable by you (permission denied)")
    except OSError as e:
        return PathKind(path, Kind.UNREADABLE, f"unreadable ({e.strerror or e})")
    return PathKind(path, *_file_kind(path, head))


def _folder_kind(path: Path) -> PathKind:
    if not os.access(path, os.R_OK | os.X_OK):
        return PathKind(path, Kind.UNREADABLE, "a folder you cannot read (permission denied)")
    if (path / "config.json").is_file():
        return PathKind(path, Kind.HUB_FOLDER, "a hub folder (config.json)")
    if (path / "run_config.json").is_file() or (path / "last.pth").is_file():
        return PathKind(path, Kind.TRAINING_RUN, "a training run folder")
    return PathKind(path, Kind.FOLDER, "a folder")


def _file_kind(path: Path, head: bytes):
    if not head:
        return Kind.EMPTY, "an empty file"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(path)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Kind.TORCH_PICKLE, "a pickle (legacy torch.save format)"
    safetensors = _safetensors_header(path, head)
    if safetensors is not None:
        return (Kind.SAFETENSORS, "a safetensors file") if safetensors else (Kind.DAMAGED,
                                                                             "a truncated safetensors file")
    for magic, description in _IMAGE_MAGIC:
        if head.startswith(magic):
            return Kind.IMAGE, description
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Kind.IMAGE, "a WebP image"
    if head[:2] in (b"P2", b"P3", b"P5", b"P6") and head[2:3].isspace():
        return Kind.IMAGE, "a PNM image"
    for magic, description in _ARCHIVE_MAGIC:
        if head.startswith(magic):
            return Kind.ARCHIVE, description
    if head[257:262] == b"ustar":
        return Kind.ARCHIVE, "a tar archive"
    if path.suffix == ".onnx" and head[:1] == b"\x08":  # protobuf field 1 (ir_version), varint
        return Kind.ONNX, "an ONNX model"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start < len(head) - 3:  # not just a character cut at the end of the sniffed bytes
                return Kind.BINARY, "a binary file of an unknown format"
        return Kind.TEXT, _text_description(head)
    return Kind.BINARY, "a binary file of an unknown format"


def _text_description(head: bytes) -> str:
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            json.loads(head)
            return "a JSON file"
        except ValueError:
            pass
    return "a text file"


def _zip_kind(path: Path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return Kind.DAMAGED, "a damaged or truncated ZIP file (the format of torch.save)"
    records = {name.split("/", 1)[-1] for name in names}
    if "constants.pkl" in records or any("/code/" in name for name in names):
        return Kind.TORCHSCRIPT, "a TorchScript model (torch.jit.save)"
    if "data.pkl" in records:
        return Kind.TORCH_ZIP, "a PyTorch checkpoint (torch.save)"
    return Kind.ARCHIVE, "a ZIP archive"


def _safetensors_header(path: Path, head: bytes) -> Optional[bool]:
    """A safetensors file starts with the length of its JSON header (8 bytes, little endian), then
    the header: True when it does and the header fits in the file, False when the file is cut
    short, None when it is not safetensors."""
    if len(head) < 10 or head[8:10] not in (b'{"', b"{}"):
        return None
    (length,) = struct.unpack("<Q", head[:8])
    if length < 2 or length > 100_000_000:  # safetensors caps its header at 100 MB
        return None
    return length <= path.stat().st_size - 8


def require_existing(path: PathLike, role: str, fix: str = "check the path") -> PathKind:
    """What ``path`` is, or a one-line error when it is missing (``fix`` says what to do) or
    unreadable. ``role`` names the path in the message (e.g. ``"dataset YAML"``)."""
    info = path_kind(path)
    if info.kind is Kind.MISSING:
        detail = "" if info.description == "missing" else f" ({info.description})"
        raise PathNotFoundError(f"{role} {path} does not exist{detail}: {fix}")
    if info.kind is Kind.UNREADABLE:
        raise PathPermissionError(f"{role} {path} is {info.description}: fix its permissions")
    return info


def require_checkpoint(path: PathLike, role: str = "checkpoint") -> PathKind:
    """``path`` as a checkpoint file (torch.save zip or pickle, safetensors), or a one-line error
    naming what it is instead. ``role`` names the path in the message (e.g. ``"--checkpoint"``)."""
    info = require_existing(path, role)
    if info.is_checkpoint:
        return info
    if info.kind in (Kind.EMPTY, Kind.DAMAGED):
        raise WrongKindError(f"cannot read {role} {info.path}: it is {info.description}, not written completely; "
                             "download or save it again")
    if info.kind is Kind.HUB_FOLDER:
        fix = "pass it as the model (a hub folder), or its model.safetensors as the checkpoint"
    elif info.kind is Kind.TRAINING_RUN:
        fix = "pass its last.pth, or its best/ folder as the model"
    elif role == "--resume":
        fix = "pass the last.pth of a run folder, or --resume without a value to continue the run in --output-dir"
    elif info.kind is Kind.TORCHSCRIPT:
        fix = "load it with torch.jit.load; a checkpoint is a state_dict saved with torch.save or safetensors"
    else:
        fix = "pass the weights file"
    raise WrongKindError(f"{role} {info.path} is not a checkpoint (expected a {CHECKPOINT_SUFFIXES} file, got "
                         f"{info.description}): {fix}")


def require_folder(path: PathLike, role: str, fix: str) -> PathKind:
    """``path`` as a folder, or a one-line error naming what it is instead; ``fix`` says what to pass."""
    info = require_existing(path, role, fix)
    if not info.is_folder:
        raise WrongKindError(f"{role} {info.path} is {info.description}, not a folder: {fix}")
    return info


def require_output_folder(path: PathLike, role: str, fix: Optional[str] = None) -> PathKind:
    """``path`` as a folder to write into: missing (to be made) or a folder. Anything else is a
    one-line :class:`PathExistsError` naming what it is; ``fix`` defaults to "choose another <role>"."""
    info = path_kind(path)
    if info.kind is not Kind.MISSING and not info.is_folder:
        raise PathExistsError(f"{role} {path} is {info.description}, not a folder: {fix or f'choose another {role}'}")
    return info

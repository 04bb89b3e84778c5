"""The model file format: weights in safetensors, metadata as JSON in the same file's header.

Reading never runs code: the header is parsed as JSON by hand and the tensors by safetensors. This module knows
files, tensors and :class:`~.model_info.ModelInfo`; building a network from them is :func:`.model.load_model`'s job.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import ModelFileError
from .files import atomic_path
from .model_info import FORMAT_VERSION, ModelInfo

METADATA_KEY = "contrastseg"
CHECKSUM_KEY = "contrastseg_sha256"
SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit
ZIP_MAGIC = b"PK\x03\x04"  # torch.save since PyTorch 1.6
PICKLE_STARTS = {b"\x80" + bytes([protocol]) for protocol in range(2, 6)}  # older torch.save: PROTO opcode


def model_path(path: str | Path) -> Path:
    """``path`` with ``.safetensors`` appended if it has another suffix."""
    path = Path(path)
    return path if path.suffix == SUFFIX else path.with_name(path.name + SUFFIX)


def write_model_file(state: dict[str, torch.Tensor], info: ModelInfo, path: str | Path) -> Path:
    """Write weights ``state`` with ``info`` to ``path`` (see :func:`model_path`); returns the path written.

    The file is written under a temporary name in the same folder and renamed when complete, so an interrupted
    or concurrent write never leaves a half file where a good one was.
    """
    path = model_path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    metadata = {METADATA_KEY: json.dumps(info.to_dict()), CHECKSUM_KEY: weights_checksum(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_model_info(path: str | Path) -> ModelInfo:
    """Metadata of a model file without loading its weights."""
    return _parse_info(_read_header_metadata(Path(path)), Path(path))


def read_model_file(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelInfo]:
    """Weights and metadata of a model file, checksum verified; any problem raises :class:`ModelFileError`."""
    path = Path(path)
    metadata = _read_header_metadata(path)
    info = _parse_info(metadata, path)
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ModelFileError(f"{path} is damaged or truncated ({err}).") from err
    if metadata.get(CHECKSUM_KEY) != weights_checksum(tensors):
        raise ModelFileError(f"{path}: the weights do not match the checksum written with them; the file was altered.")
    return tensors, info


def weights_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of all tensors, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _read_header_metadata(path: Path) -> dict[str, str]:
    """The safetensors header's ``__metadata__`` dict, read by hand so that nothing but JSON is parsed."""
    if not path.is_file():
        raise ModelFileError(f"No model file at {path}.")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        (header_len,) = struct.unpack("<Q", head) if len(head) == 8 else (size,)
        blob = f.read(header_len) if header_len <= min(size - 8, MAX_HEADER_BYTES) else b""
    if not blob.startswith(b"{"):
        # Only now look for a pickle: a safetensors length's first byte may be 0x80 like pickle's opcode.
        if head[:4] == ZIP_MAGIC or head[:2] in PICKLE_STARTS:
            raise ModelFileError(
                f"{path} is a pickled PyTorch checkpoint. napari-contrastseg does not load pickles, because "
                "loading one can run arbitrary code; use a .safetensors model written by napari-contrastseg."
            )
        if len(head) < 8:
            raise ModelFileError(f"{path} is too short to be a model file ({size} bytes).")
        raise ModelFileError(f"{path} is truncated or not a safetensors model file.")
    try:
        header = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path} is not a safetensors model file (unreadable header).") from err
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        raise ModelFileError(f"{path} is a safetensors file but not a napari-contrastseg model (no metadata).")
    return metadata


def _parse_info(metadata: dict[str, str], path: Path) -> ModelInfo:
    try:
        values = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: the model's metadata is not valid JSON.") from err
    version = values.get("format_version") if isinstance(values, dict) else None
    if not isinstance(version, int):
        raise ModelFileError(f"{path}: the model's metadata has no format version.")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written in model format {version} by napari-contrastseg "
            f"{values.get('package_version', '?')}; this version reads format {FORMAT_VERSION}: please upgrade."
        )
    try:
        return ModelInfo.from_dict(values)
    except (TypeError, KeyError, ValueError) as err:
        raise ModelFileError(f"{path}: the model's metadata is incomplete or incompatible ({err}).") from err

"""Checkpoints: ``STEM.safetensors`` + ``STEM.json`` (docs/ARCHITECTURE.md), and training state.

Weights are only ever read as safetensors (a flat tensor container: no code can run while it is
parsed), after the file's size is checked and its bytes match the SHA-256 recorded in the JSON.
Training state (``STEM.state.pt``) is a torch file read with ``weights_only=True``; everything
written into it is tensors, dicts, lists, tuples, ints, floats, bools, strings or None.

A checkpoint is two files, so one rename cannot replace both. The JSON is the commit point:
new weights go first to ``STEM.next.safetensors``, then the JSON (naming their SHA-256) replaces
the old one, then the weights are renamed over ``STEM.safetensors``. A crash before the JSON
leaves the old pair intact; a crash after it leaves the new weights in ``.next``, which the
reader finds by their checksum. Either way the checkpoint loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .atomic import atomic_write_bytes, atomic_write_json, promote
from .config import ModelConfig, from_dict
from .errors import CheckpointError, ConfigError
from .models import build_model, strip_prefixes, unwrap, without_pretrained

FORMAT_VERSION = 1
KINDS = ("view_model", "view_classifier")
MAX_WEIGHTS_BYTES = 1 << 30  # 1 GiB: r2plus1d_18 is ~125 MB in fp32
MAX_META_BYTES = 4 << 20
MAX_STATE_BYTES = 4 << 30  # model + AdamW moments + RNG
MAX_HEADER_BYTES = 16 << 20


# Stable ``CheckpointError.code`` values (set by ``_refuse``); messages name no file and quote
# no value from the file.
CHECKPOINT_ERROR_CODES = (
    "meta_missing", "meta_too_large", "meta_invalid", "bad_format_version", "bad_kind", "meta_incomplete",
    "weights_missing", "weights_too_large", "checksum_mismatch", "not_safetensors", "bad_safetensors_header",
    "invalid_safetensors", "non_finite_weights", "bad_model_config", "bad_outputs", "wrong_architecture",
    "state_missing", "state_too_large", "unsafe_state", "state_not_dict",
)


def _refuse(code: str, message: str) -> CheckpointError:
    """A CheckpointError carrying a stable ``code`` (as InputError does) for tests and the UI."""
    return CheckpointError(message, code)


def stem_paths(stem: str | Path) -> tuple[Path, Path]:
    """(STEM.safetensors, STEM.json) for a stem given with or without either suffix."""
    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def pending_weights_path(stem: str | Path) -> Path:
    """Where save_checkpoint stages new weights before the JSON commits them."""
    weights, _ = stem_paths(stem)
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".next.safetensors")


def checkpoint_exists(stem: str | Path) -> bool:
    """A checkpoint exists once its JSON (the commit point) does."""
    return stem_paths(stem)[1].is_file()


def state_path(stem: str | Path) -> Path:
    stem = Path(stem)
    return stem.with_name(stem.name + ".state.pt")


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Plain-keyed, contiguous CPU copies of a (possibly DDP / compiled) model's tensors."""
    state = unwrap(model).state_dict()
    return {strip_prefixes(k): v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def weights_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(state)


def save_checkpoint(stem: str | Path, model: nn.Module | dict[str, torch.Tensor], meta: dict) -> Path:
    """Write STEM.safetensors and STEM.json (meta + sha256, format_version, created), crash-safe
    as the module docstring describes.

    ``model``: a module (DDP / compiled wrappers are unwrapped) or an already plain state dict.
    ``meta`` must hold at least ``kind``, ``model`` (ModelConfig dict) and ``outputs``.
    Returns the JSON path.
    """
    for key in ("kind", "model", "outputs"):
        if key not in meta:
            raise CheckpointError(f"checkpoint meta lacks {key!r}")
    state = model if isinstance(model, dict) else model_state_dict(model)
    state = {strip_prefixes(k): v.detach().cpu().contiguous() for k, v in state.items()}
    payload = weights_bytes(state)
    weights_path, meta_path = stem_paths(stem)
    full_meta = dict(meta)
    full_meta["format_version"] = FORMAT_VERSION
    full_meta["sha256"] = hashlib.sha256(payload).hexdigest()
    full_meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    pending = pending_weights_path(stem)
    atomic_write_bytes(pending, payload)
    atomic_write_json(meta_path, full_meta)
    promote(pending, weights_path)
    return meta_path


def read_meta(stem: str | Path) -> dict:
    """The checkpoint's JSON, validated for kind, version and required keys."""
    _, meta_path = stem_paths(stem)
    if not meta_path.is_file():
        raise _refuse("meta_missing", "checkpoint metadata (.json) not found")
    from .trust import read_bounded_bytes

    if meta_path.stat().st_size > MAX_META_BYTES:
        raise _refuse("meta_too_large", "checkpoint metadata is implausibly large")
    try:
        meta = json.loads(read_bounded_bytes(meta_path, "checkpoint metadata", MAX_META_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse("meta_invalid", f"checkpoint metadata is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise _refuse("meta_invalid", "checkpoint metadata is not a JSON object")
    # The offending values are not echoed: a hostile file could put anything there.
    if meta.get("format_version") != FORMAT_VERSION:
        raise _refuse("bad_format_version", f"unsupported checkpoint format_version (expected {FORMAT_VERSION})")
    if meta.get("kind") not in KINDS:
        raise _refuse("bad_kind", f"unknown checkpoint kind (expected one of {', '.join(KINDS)})")
    for key in ("model", "outputs", "sha256"):
        if key not in meta:
            raise _refuse("meta_incomplete", f"checkpoint metadata lacks {key!r}")
    return meta


def committed_weights(stem: str | Path, expected_sha256: str) -> tuple[Path, bytes]:
    """The weights file the JSON committed (STEM.safetensors, or STEM.next.safetensors after a
    crash inside save_checkpoint) and its bytes, size-checked before reading and checksum-checked."""
    weights_path = stem_paths(stem)[0]
    candidates = [p for p in (weights_path, pending_weights_path(stem)) if p.is_file()]
    if not candidates:
        raise _refuse("weights_missing", "checkpoint weights (.safetensors) not found")
    for path in candidates:
        if path.stat().st_size > MAX_WEIGHTS_BYTES:
            raise _refuse("weights_too_large",
                          f"checkpoint weights are larger than the {MAX_WEIGHTS_BYTES >> 30} GiB limit")
        from .trust import read_bounded_bytes

        data = read_bounded_bytes(path, "checkpoint weights", MAX_WEIGHTS_BYTES)
        if hashlib.sha256(data).hexdigest() == str(expected_sha256).lower():
            return path, data
    raise _refuse("checksum_mismatch", "checkpoint weights do not match their recorded checksum")


def finish_interrupted_save(stem: str | Path) -> None:
    """Writers call this on resume: complete a save killed after its JSON committed (promote the
    staged weights) or drop weights staged by one killed before it (never committed)."""
    pending = pending_weights_path(stem)
    if not pending.is_file():
        return
    try:
        committed, _ = committed_weights(stem, read_meta(stem)["sha256"])
    except CheckpointError:
        return  # nothing loadable to complete; the caller rewrites this checkpoint
    if committed == pending:
        promote(pending, stem_paths(stem)[0])
    else:
        pending.unlink()


def read_weights(stem: str | Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    """Size-check, checksum-check, header-check, then parse the safetensors file."""
    from safetensors.torch import load

    _, data = committed_weights(stem, expected_sha256)
    _check_safetensors_header(data)
    try:
        state = load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError; any failure = refuse
        raise _refuse("invalid_safetensors",
                      f"checkpoint weights are not a valid safetensors file ({type(exc).__name__})") from None
    _check_finite(state)
    return state


def _check_finite(state: dict[str, torch.Tensor]) -> None:
    """NaN / inf weights load fine and then predict NaN for every study: refuse them here."""
    for tensor in state.values():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _refuse("non_finite_weights", "checkpoint weights contain NaN or infinite values")


def _check_safetensors_header(data: bytes) -> None:
    """Safetensors: u64 little-endian header length, then a JSON object. Pickles fail here."""
    if len(data) < 10:
        raise _refuse("not_safetensors", "checkpoint weights are not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(len(data) - 8, MAX_HEADER_BYTES) or data[8:9] != b"{":
        raise _refuse("not_safetensors", "checkpoint weights are not a safetensors file")
    try:
        header = json.loads(data[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # "[[[[…" nests past the stack
        raise _refuse("bad_safetensors_header", "checkpoint weights are not a safetensors file (bad header)") from None
    if not isinstance(header, dict):
        raise _refuse("bad_safetensors_header", "checkpoint weights are not a safetensors file (bad header)")


def model_config_from_meta(meta: dict) -> ModelConfig:
    try:
        return without_pretrained(from_dict(ModelConfig, meta["model"]))
    except (ConfigError, TypeError, ValueError, AttributeError) as exc:
        # The exception's text can quote keys from the file: report its type only.
        raise _refuse("bad_model_config", f"checkpoint model config is invalid ({type(exc).__name__})") from None


def load_checkpoint(stem: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the model described by STEM.json and load STEM.safetensors strictly.

    Returns (module on CPU in eval mode, meta). Raises CheckpointError for anything missing,
    oversized, tampered with, not safetensors, or not matching the recorded architecture.
    """
    meta = read_meta(stem)
    state = read_weights(stem, meta["sha256"])
    outputs = meta["outputs"]
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) for o in outputs):
        raise _refuse("bad_outputs", "checkpoint outputs must be a non-empty list of names")
    from .trust import check_architecture

    check_architecture(meta["model"], len(outputs))  # before build_model allocates anything
    config = model_config_from_meta(meta)
    try:
        model = build_model(config, len(outputs))
    except (ConfigError, TypeError, ValueError, KeyError, RuntimeError) as exc:  # e.g. an unknown arch
        raise _refuse("bad_model_config", f"checkpoint model config cannot be built ({type(exc).__name__})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise _refuse("wrong_architecture", f"checkpoint weights do not fit the recorded architecture: {first}") from None
    return model.eval(), meta


# ---------------------------------------------------------------- training state (STEM.state.pt)

def rng_state() -> dict[str, Any]:
    """torch / CUDA / numpy / python RNG states in weights_only-loadable types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(py_version), "state": [int(v) for v in py_state], "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))


def save_training_state(stem: str | Path, state: dict[str, Any]) -> Path:
    """torch.save to bytes, then one atomic write of STEM.state.pt."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write_bytes(state_path(stem), buffer.getvalue())


def load_training_state(stem: str | Path) -> dict[str, Any]:
    """STEM.state.pt read with ``weights_only=True`` (refuses anything but plain data)."""
    path = state_path(stem)
    if not path.is_file():
        raise _refuse("state_missing", "training state (.state.pt) not found")
    if path.stat().st_size > MAX_STATE_BYTES:
        raise _refuse("state_too_large", "training state file is implausibly large")
    try:
        # weights_only passed explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 cannot override an
        # explicit argument (tests/test_hostile_inputs.py checks that it stays so).
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; all mean "refuse"
        raise _refuse("unsafe_state", f"training state could not be read safely ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise _refuse("state_not_dict", "training state is not a dict")
    return state

"""Checkpoint files: written atomically, read back with `torch.load(weights_only=True)`.

A checkpoint holds only tensors and plain Python values (dicts, lists, numbers, strings, None), so reading one
never runs code: run directories on shared cluster storage may have been written by anyone (`--init-from`).
A file whose pickle names anything else is refused with one line naming the file. What a run's checkpoint holds
is harness/run/checkpoint.py's business; transfer reads the model weights of another run's.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from harness.errors import UserError
from harness.io import _jsonable, atomic_path


def plain(obj: Any) -> Any:
    """A JSON-shaped copy of `obj` with numpy scalars as Python numbers (inf and NaN kept): safe to unpickle."""
    return json.loads(json.dumps(obj, default=_jsonable))


def save(path: str | Path, blob: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint at `path`; UserError (one line, naming the file) if it is not a plain-weights checkpoint."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = next((ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln), None)
        if unsafe:
            raise UserError(f"{path}: refused: the checkpoint's pickle names code to run ({unsafe[:200]}); "
                            "nothing from it was executed") from None
        raise UserError(f"{path}: not a readable checkpoint (not a torch.save file of tensors and plain "
                        "values)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable checkpoint ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else 'empty'})") from None


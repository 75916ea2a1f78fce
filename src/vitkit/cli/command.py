"""What a subcommand is, and the paths it declares: each command module builds one `Command`; the entry point
(cli/__init__.py) parses, lets the command `prepare` its job from the flags, checks every path the command
declared (inputs readable files, outputs writable, a dataset a folder), and only then runs it, so a bad path
costs no work and leaves nothing half-written."""

from __future__ import annotations

import argparse
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, VitkitError


def what_it_is(path: Path) -> str:
    mode = path.stat().st_mode
    kinds = [(stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def check_input_file(path: str | Path, what: str, error: type[VitkitError] = DataError) -> Path:
    """`path` as a readable, non-empty regular file; else `error` saying what it is instead."""
    p = Path(path)
    if not p.exists():
        raise error(f"{what} {str(path)!r} does not exist")
    if not p.is_file():
        raise error(f"{what} {str(path)!r} is {what_it_is(p)}, not a file")
    if p.stat().st_size == 0:
        raise error(f"{what} {str(path)!r} is an empty file (0 bytes)")
    if not os.access(p, os.R_OK):
        raise error(f"{what} {str(path)!r} is not readable (permission denied)")
    return p


def _can_write_in(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried for real: permissions, read-only mounts, root)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_output_path(path: str | Path, what: str, folder: bool = False) -> Path:
    """Fail unless `path` (a file to write, or with `folder` a folder to write into) can be written: not an
    existing path of the other kind, no parent that is a file, the nearest existing folder writable. Creates
    nothing."""
    p = Path(path)
    if p.exists() and not (p.is_dir() if folder else p.is_file()):
        expected = "a folder" if folder else "a file name"
        raise ConfigError(f"{what} {str(path)!r} is {what_it_is(p)}; expected {expected}")
    existing = p.absolute() if folder and p.is_dir() else p.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot write {what} {str(path)!r}: {str(existing)!r} is a file, not a folder")
    if not _can_write_in(existing):
        raise ConfigError(f"cannot write {what} {str(path)!r}: the folder {str(existing)!r} is not writable")
    return p


@dataclass(frozen=True)
class Input:
    """A file the command reads (`what` names it in the error)."""

    path: str | Path
    what: str
    error: type[VitkitError] = DataError

    def check(self) -> None:
        check_input_file(self.path, self.what, self.error)


@dataclass(frozen=True)
class Output:
    """A file (or with `folder`, a folder) the command writes."""

    path: str | Path
    what: str
    folder: bool = False

    def check(self) -> None:
        check_output_path(self.path, self.what, self.folder)


@dataclass(frozen=True)
class Dataset:
    """A `--data` value: a built-in dataset's name or a folder root/<class>/<file>, never another existing file."""

    name: str

    def check(self) -> None:
        from ..data import BUILTIN

        p = Path(self.name)
        if p.exists() and not p.is_dir() and self.name not in BUILTIN:
            raise DataError(f"--data {self.name!r} is {what_it_is(p)}; expected {' or '.join(map(repr, BUILTIN))}"
                            " or a folder root/<class>/<file>")


def dataset(args) -> list[Dataset]:
    """The --data of `args`, if given."""
    return [Dataset(args.data)] if getattr(args, "data", None) else []


@dataclass(frozen=True)
class Command:
    """One subcommand. `add_arguments(parser)` declares its flags; `prepare(args)` turns the parsed flags into
    the command's job (reading what it needs once; default: the flags themselves); `paths(job)` lists every
    path the job reads or writes, checked before `run(job)` (the exit status) does any work."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any], int]
    paths: Callable[[Any], list] = lambda job: []
    prepare: Callable[[argparse.Namespace], Any] = lambda args: args

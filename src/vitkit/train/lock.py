"""One run per run folder: `<out>/.lock` holds the writing process's pid under an exclusive `fcntl.flock`. The
kernel drops the lock when that process ends, however it ends, so a folder left by a dead (killed, crashed) run
is taken over at once, while a second `vitkit train` on a live run's folder refuses in one sentence instead of
overwriting its `last.pt` and `metrics.csv`. (flock is advisory and local to one machine's kernel on some
network filesystems; two machines writing one folder is what the rank-0-writes rule already avoids.)"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

LOCK_NAME = ".lock"


class RunLock:
    """Held from `acquire()` to `release()` (or the process's end)."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"another vitkit train (pid {holder}) is running in {str(self.path.parent)!r}; wait for "
                              "it to finish, or give this run another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

"""The one error the store raises for a store it cannot use, whichever backend: `StoreProblem`."""

from __future__ import annotations

from pathlib import Path


class StoreProblem(Exception):
    """The store cannot be used as it is: the message names the file or the server (never its password), what is
    wrong and what to do. `corrupt`: a SQLite file that fails quick_check, so nothing may be written to it until it
    is replaced; any other problem may clear by itself (a lock, a full disk, a server restarting)."""

    def __init__(self, path: Path | str, what: str, fix: str, *, corrupt: bool = False) -> None:
        super().__init__(f"{path}: {what}. {fix}")
        self.path = path
        self.what = what
        self.fix = fix
        self.corrupt = corrupt

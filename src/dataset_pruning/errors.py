"""The project's own errors print as one short message, without the framework's traceback.

An error is the project's own when it is a ``ValueError``, ``FileNotFoundError``, ``FloatingPointError`` or
``StorageError`` (a full disk, a folder that cannot be written) raised by code of this package: those messages are written to say what to change. They print as ``Error: <message>``;
the full traceback goes to ``logs/errors.log`` (in the working directory), and to the screen as well with
``DATASET_PRUNING_TRACEBACK=1``. Any other exception keeps the usual traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import traceback
from datetime import datetime
from pathlib import Path

class StorageError(OSError):
    """A write failed for lack of space or permission; the message names the folder (``storage_error``)."""


PACKAGE_DIR = Path(__file__).resolve().parent
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError, StorageError)
LOG_FILE = Path("logs") / "errors.log"
_FULL, _DENIED = (errno.ENOSPC, errno.EDQUOT), (errno.EACCES, errno.EPERM, errno.EROFS)


def storage_error(folder: Path | None, error: BaseException) -> StorageError | None:
    """What a failed write into ``folder`` (None: not known) means for the user, when it is a full disk (the errno
    says so, or the folder's file system has under 1 MiB free: numpy and torch report a short write without errno)
    or a folder that cannot be written; else None."""
    code = getattr(error, "errno", None)
    try:
        full = code in _FULL or (folder is not None and shutil.disk_usage(folder).free < 2**20)
    except OSError:
        full = False
    folder = folder or "the disk this run writes to"
    if full:
        return StorageError(f"no space left on {folder} (its disk is full); free space there, or write elsewhere "
                            "(--params data_root=<folder>)")
    if code in _DENIED:
        return StorageError(f"{folder} is not writable ({os.strerror(code)}); make it writable, or write elsewhere "
                            "(--params data_root=<folder>)")
    return None


def own_error(error: BaseException) -> BaseException | None:
    """The first error in ``error``'s chain that the project raised with a message for the user, or a full disk met
    by other code (``storage_error``), else None."""
    while error is not None:
        frames = traceback.extract_tb(error.__traceback__)
        if isinstance(error, USER_ERRORS) and frames and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE_DIR):
            return error
        if isinstance(error, OSError) and error.errno in _FULL:  # a permission error may be a read's: not here
            return storage_error(Path(error.filename).parent if error.filename else None, error)
        error = error.__cause__
    return None


def _excepthook(previous):
    def hook(kind, error, tb):
        own = own_error(error)
        if own is None or os.environ.get("DATASET_PRUNING_TRACEBACK"):
            return previous(kind, error, tb)
        text = "".join(traceback.format_exception(kind, error, tb))
        where = "the traceback was not written"
        try:
            LOG_FILE.parent.mkdir(exist_ok=True)
            with LOG_FILE.open("a") as handle:
                handle.write(f"--- {datetime.now().isoformat(timespec='seconds')} {' '.join(sys.argv)}\n{text}\n")
            where = f"full traceback in {LOG_FILE}"
        except OSError:
            pass
        sys.stderr.write(f"\nError: {own}\n\n({where}; DATASET_PRUNING_TRACEBACK=1 prints it here)\n")

    hook.dataset_pruning = True
    return hook


def install() -> None:
    """Wrap ``sys.excepthook`` (after Kedro's rich one is installed); idempotent."""
    if not getattr(sys.excepthook, "dataset_pruning", False):
        sys.excepthook = _excepthook(sys.excepthook)

"""The project's own errors print as one short message, without the framework's traceback.

An error is the project's own when it is a ``ValueError``, ``FileNotFoundError`` or ``FloatingPointError`` raised
by code of this package: those messages are written to say what to change. They print as ``Error: <message>``;
the full traceback goes to ``logs/errors.log`` (in the working directory), and to the screen as well with
``DATASET_PRUNING_TRACEBACK=1``. Any other exception keeps the usual traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import datetime
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError)
LOG_FILE = Path("logs") / "errors.log"


def own_error(error: BaseException) -> BaseException | None:
    """The first error in ``error``'s chain that the project raised with a message for the user, else None."""
    while error is not None:
        frames = traceback.extract_tb(error.__traceback__)
        if isinstance(error, USER_ERRORS) and frames and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE_DIR):
            return error
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

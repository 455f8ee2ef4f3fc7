"""Run as ``kedro`` starts (the ``kedro.init`` entry point in pyproject.toml) and by ``python -m dataset_pruning``:
third-party warnings a user cannot act on are silenced, so the first screen of a run, and its ``Error:`` line, are
the project's. ``--pipeline`` (the README's flag) keeps working; only Kedro's notice that it is deprecated goes.
And glibc keeps one malloc arena (``steady_allocator``), which keeps the run's peak memory to what it holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
import warnings

# Warnings raised by Kedro, mlflow (on kedro-mlflow's model class) and OmegaConf (called by Kedro) at start-up,
# kedro-viz's notice that it records no events for --pipeline and --from-nodes runs, and Kedro's notice that no node
# has typed parameters
THIRD_PARTY_WARNINGS = re.compile(
    r"Option '--pipeline' is deprecated|register_new_resolver\(\) is deprecated|Add type hints to the `predict` method"
    r"|Workflow tracking is disabled|No typed parameter requirements found"
)
# the loggers they reach the screen through (Kedro's logging captures warnings as py.warnings); a logger's filters
# survive Kedro's logging configuration, its level does not
LOGGERS = ("py.warnings", "kedro_viz.integrations.kedro.run_hooks", "kedro.validation.parameter_validator")


def _not_third_party(record: logging.LogRecord) -> bool:
    return not THIRD_PARTY_WARNINGS.search(record.getMessage())


def quiet_start() -> None:
    """Silence ``THIRD_PARTY_WARNINGS``: by a warnings filter, and on ``LOGGERS`` (mlflow forces its warning to show
    once, past any filter). Idempotent."""
    warnings.filterwarnings("ignore", message=f".*({THIRD_PARTY_WARNINGS.pattern})")
    for name in LOGGERS:
        if _not_third_party not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_not_third_party)


M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def steady_allocator(arenas: int = 1) -> bool:
    """Let glibc keep at most ``arenas`` malloc arenas; False where the C library is not glibc (nothing done).

    By default glibc gives threads arenas of their own (up to 8 per core), and what torch's threads free there stays
    resident: at n = 60,000 Fashion-MNIST the feature pass of scoring (``influence.head_inputs``) rose by 1.4 GB and
    kept 1.1 GB, the run's peak going from 1.3 to 2.8 GB; with one arena it rose by 0.3 GB (docs/scale.md, "Memory").
    Training is no slower (fewer page faults). Call it before torch starts its threads."""
    mallopt = libc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, int(arenas)))


def return_free_memory() -> bool:
    """Hand the pages glibc's heap holds free back to the system (``malloc_trim(0)``); False where the C library is
    not glibc. Run before every node (``run_report.RunReport``): a stage's freed temporaries otherwise stay resident
    (55-93 MB after ERM, scoring and selection in the default Fashion-MNIST run), and the next stage's large arrays,
    which glibc maps anew, stack on top of them."""
    trim = libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


def libc_function(name: str):
    """The C library's function ``name``, or None where it has none (not glibc); startup's allocator settings and
    ``runtime.release_pages`` call through it."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (OSError, AttributeError, TypeError):
        return None


def start() -> None:
    """What runs as ``kedro`` starts: ``quiet_start`` and ``steady_allocator``."""
    quiet_start()
    steady_allocator()

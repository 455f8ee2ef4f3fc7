"""One small name -> entry registry, shared by data sets, models, scorers, solvers and selection rules.

An entry declares its options once, as the keyword parameters of its signature: their types come from its
annotations and their ranges from ``options.RANGES``. ``Registry.check`` is the one validator of those options,
called wherever they enter (the parameter hook, the library's entry points, the sweep), so an unknown name gets a
"did you mean" and a bad value the option's name, before any training. What a runner knows about an entry beyond
its options (a scorer's output kind, trace needs, kept end) is its metadata, given at registration.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from dataset_pruning.options import option_problems

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; a duplicate name fails at import, an unknown one lists the known names.

    ``runner`` names the parameters every entry takes from whoever runs it (never options), each with a hint
    for a user who sets one as an option (or None: no hint).
    """

    def __init__(self, kind: str, *, runner: Mapping[str, str | None] | None = None) -> None:
        self.kind = kind
        self.runner = dict(runner or {})
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: add the entry under ``name`` with its metadata ``meta`` (read back by ``meta(name)``)."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name], self._meta[name] = obj, dict(meta)
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}{hint}; known: {', '.join(sorted(self._entries))}") from None

    def name_of(self, entry: Any) -> str | None:
        """The name ``entry`` is registered under (None: not registered)."""
        return next((name for name, obj in self._entries.items() if obj is entry), None)

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def options(self, name: str) -> dict[str, Any]:
        """The options entry ``name`` takes, with their defaults (``inspect.Parameter.empty``: required), in
        signature order: its named parameters except the runner's."""
        parameters = inspect.signature(self.get(name)).parameters.values()
        return {
            p.name: p.default
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in self.runner
        }

    def check(self, name: str, options: Mapping[str, Any] | None, where: str = "") -> dict[str, Any]:
        """``options`` as a dict, after refusing an unknown name (with the closest known one, or the runner's hint)
        and a value of the wrong type or range (``options.option_problems``); ``where`` prefixes the message with
        the parameter path, e.g. ``influence_scoring.options``."""
        options = dict(options or {})
        known = list(self.options(name))
        prefix = f"{where}: " if where else ""
        unknown = sorted(str(key) for key in options if key not in known)
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, known, n=1)
                hint = self.runner.get(key) or (f"did you mean {close[0]!r}?" if close else None)
                if hint:
                    hints.append(hint if len(unknown) == 1 else f"{key!r}: {hint}")
            raise ValueError(
                f"{prefix}{self.kind} {name!r} takes no option(s) {unknown}; it takes: {', '.join(known) or 'none'}"
                + (f" ({'; '.join(hints)})" if hints else "")
            )
        entry = self.get(name)
        problems = option_problems(entry.__init__ if isinstance(entry, type) else entry, options,
                                   f"{where}." if where else "")
        if problems:
            raise ValueError(f"{self.kind} {name!r}: " + "; ".join(problems))  # each names where.key
        return options

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return sorted(self._entries)

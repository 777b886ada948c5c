"""One registry type for the kinds a user may add to (attacks, encoders, architectures, datasets,
surrogates, training recipes, result columns).

A `Registry` maps names to what declares them: it refuses a second entry of one name, answers an
unknown name with the closest ones, and the first time it is read it loads its built-ins and then
the Python entry-point group of its kind (``robustbench_snn.attacks``, ``.encoders``,
``.architectures``, ``.datasets``, ``.surrogates``, ``.recipes``, ``.columns``). An entry point names a module of an installed
package; importing it registers what it defines the way the built-ins do, so ``rsc-bench`` itself
sees a user's attack, coding, architecture or dataset, not only a script that imports it first. A plug-in that fails to load is
skipped with a warning naming it, so one broken package never breaks the command line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from robustbench_snn.errors import UserError, unknown_name

logger = logging.getLogger(__name__)

Entry = TypeVar("Entry")


class Registry(Mapping[str, Entry], Generic[Entry]):
    """The names of one kind (``kind``, as messages say it), read-only as a mapping."""

    def __init__(self, kind: str, group: str, builtins: Callable[[], None] | None = None) -> None:
        self.kind, self.group = kind, group
        self._builtins = builtins
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(self, name: str, entry: Entry, same: Callable[[Entry, Entry], bool] | None = None) -> Entry:
        """Add ``entry`` as ``name``; a second entry of one name is a TypeError (``same`` may
        accept a re-registration of what is the same thing, as a module imported twice)."""
        known = self._entries.get(name)
        if known is not None and not (same is not None and same(known, entry)):
            raise TypeError(f"{self.kind} {name!r} is already registered by {_describe(known)}")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests that register a toy entry for themselves)."""
        self._entries.pop(name, None)

    def lookup(self, name: str) -> Entry:
        """The entry ``name``, or a `UserError` naming the closest ones."""
        self._load()
        if name not in self._entries:
            raise UserError(unknown_name(self.kind, name, sorted(self._entries)))
        return self._entries[name]

    def __getitem__(self, name: str) -> Entry:
        self._load()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(dict(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._builtins is not None:
            self._builtins()
        for plugin in entry_points(group=self.group):
            try:
                plugin.load()
            except Exception as error:  # a user's package may fail in any way; it must not stop ours
                logger.warning("skipped the %s plug-in %r (%s): %s: %s", self.kind, plugin.name, plugin.value, type(error).__name__, error)


def _describe(entry: object) -> str:
    kind = entry if isinstance(entry, type) or callable(entry) else type(entry)
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}"

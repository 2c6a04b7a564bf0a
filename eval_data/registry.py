"""A registry of plugin classes discovered from the modules of one package.

``eval_data.kinds``, ``grader.kinds`` and the page layer's ``leaderboard.kinds`` use it: a
module (or package) defines a class decorated with the registry's ``register``, and adding a
task kind means adding one such module to each, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    def __init__(self, package: str, what: str, error: Callable[[str], Exception]) -> None:
        self._package = package
        self._what = what
        self._error = error
        self._items: dict[str, T] = {}
        self._discovered = False

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: instantiate ``cls`` and register it under its ``name``."""
        instance = cls()
        self._items[instance.name] = instance
        return cls

    def _discover(self) -> None:
        if self._discovered:
            return
        package: Any = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self._package}.{info.name}")
        self._discovered = True

    def get(self, name: str) -> T:
        self._discover()
        try:
            return self._items[name]
        except KeyError:
            raise self._error(
                f"unknown {self._what} {name!r}; known: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._items)

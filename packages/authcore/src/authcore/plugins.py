"""Finding and loading plugins: provider types by entry point, imported only when configured.

Listing reads installed metadata once (one scan of every distribution's entry points,
cached for the process) and imports nothing. A provider module is imported when a
configuration names its type, or when a ``class: "pkg.module:Class"`` path is given.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigError, UnknownProvider
from .providers import Provider

__all__ = [
    "PROVIDER_GROUP",
    "PLUGIN_GROUP",
    "SHIPPED_TYPES",
    "BLOCK_ENV",
    "InstalledProvider",
    "installed_providers",
    "refresh",
    "create_plugin_manager",
    "ProviderRegistry",
    "load_class",
]

#: Entry-point group of provider packages; the entry-point name is the provider type.
PROVIDER_GROUP = "authcore.providers"
#: Entry-point group of other extensions (permission stores, audit, enrichment).
PLUGIN_GROUP = "authcore.plugins"
#: Comma-separated ``authcore.plugins`` entry-point names not to load (``*`` for all).
BLOCK_ENV = "AUTHCORE_BLOCK_PLUGINS"

#: A provider type: lower case, so that what a configuration writes has one spelling per type.
_VALID_TYPE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_TYPE_RULE = "a lower-case letter, then lower-case letters, digits, '_' or '-', at most 64"
#: Provider types of the authcore project's own distributions (``auth-<type>``), for install hints.
SHIPPED_TYPES = frozenset({"dummy", "noauth", "ldap", "keycloak"})
_FROM_WHEELS = " (authcore's own package: add --find-links DIR when DIR holds authcore's wheels)"
_CLASS_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class InstalledProvider:
    """An installed provider type, as read from metadata (nothing imported)."""

    name: str
    distribution: str
    version: str
    value: str

    def to_dict(self) -> dict[str, str]:
        """``name``, ``distribution``, ``version``: what ``authcore providers --json`` prints."""
        return {"name": self.name, "distribution": self.distribution, "version": self.version}


_scan: dict[str, list[metadata.EntryPoint]] | None = None


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    # One pass over the installed distributions serves both groups. Only distributions
    # whose entry_points.txt mentions an authcore group are parsed: with hundreds of
    # packages installed, parsing every file is most of the cost of a full scan.
    global _scan
    if _scan is None:
        scan: dict[str, list[metadata.EntryPoint]] = {PROVIDER_GROUP: [], PLUGIN_GROUP: []}
        seen: set[str] = set()
        for dist in metadata.distributions():
            text = dist.read_text("entry_points.txt")
            if not text or "[authcore." not in text:
                continue
            name = (dist.metadata["Name"] or "").lower().replace("_", "-")
            if name in seen:  # the same distribution further down sys.path is shadowed
                continue
            seen.add(name)
            for ep in dist.entry_points:
                if ep.group in scan:
                    scan[ep.group].append(ep)
        _scan = scan
    return _scan[group]


def refresh() -> None:
    """Forget the cached metadata scan (after installing or removing packages at run time)."""
    global _scan
    _scan = None


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return dist.name if dist is not None else "<unknown distribution>"


def _dist_label(ep: metadata.EntryPoint) -> str:
    """``'auth-ldap' 0.1.0``: a distribution as an error message names it."""
    dist = ep.dist
    return f"{_dist_name(ep)!r} {dist.version}" if dist is not None else _dist_name(ep)


def _folded(name: str) -> str:
    """What a type name would mean if case, spaces and quotes were ignored."""
    return name.strip().strip("\"'").strip().lower()


def installed_providers() -> list[InstalledProvider]:
    """Every installed provider type, sorted by name.

    Raises :class:`~authcore.errors.ConfigError` when two distributions claim one type or a
    type name breaks the rule (lower case: a letter, then letters, digits, ``_`` or ``-``):
    both are broken installs, and the message names each distribution with its version.
    """
    eps = _entry_points(PROVIDER_GROUP)
    for ep in eps:
        if not _VALID_TYPE.fullmatch(ep.name):
            # An "LDAP " beside "ldap" would be a second type that a config could pick by mistake.
            twin = next((o for o in eps if o.name != ep.name and o.name == _folded(ep.name)), None)
            clash = f"; it differs only in case or spaces from {twin.name!r} of {_dist_label(twin)}" if twin else ""
            raise ConfigError(
                f"distribution {_dist_label(ep)} declares provider type {ep.name!r}, which is not a valid type "
                f"name ({_TYPE_RULE}){clash}; fix or uninstall that distribution"
            )
    by_name: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        other = by_name.get(ep.name)
        if other is not None and _dist_name(other) != _dist_name(ep):
            raise ConfigError(
                f"provider type {ep.name!r} is declared by two distributions: {_dist_label(other)} and "
                f"{_dist_label(ep)}; uninstall one of them"
            )
        by_name[ep.name] = ep
    return [
        InstalledProvider(name, _dist_name(ep), ep.dist.version if ep.dist else "", ep.value)
        for name, ep in sorted(by_name.items())
    ]


def create_plugin_manager(*, load_plugins: bool = True) -> pluggy.PluginManager:
    """A plugin manager with authcore's hookspecs and, unless blocked, the ``authcore.plugins`` entry points."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_plugins:
        blocked = {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
        if "*" not in blocked:
            for ep in _entry_points(PLUGIN_GROUP):
                if ep.name not in blocked and pm.get_plugin(ep.name) is None:
                    pm.register(ep.load(), name=ep.name)
    return pm


def load_class(path: str) -> type[Provider]:
    """Import ``"package.module:ClassName"`` and check that it is a :class:`Provider` subclass.

    py-ispyb's dotted ``module.Class`` form is accepted too.
    """
    if ":" not in path and "." in path:
        path = "{}:{}".format(*path.rsplit(".", 1))
    if not _CLASS_PATH.fullmatch(path):
        raise ConfigError(f"class {path!r} is not of the form 'package.module:ClassName'")
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"class {path!r}: cannot import module {module_name!r} ({exc})") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"class {path!r}: module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ConfigError(f"class {path!r} is not a subclass of authcore.Provider")
    if getattr(cls, "__abstractmethods__", None):
        raise ConfigError(f"class {path!r} is abstract: it does not implement {sorted(cls.__abstractmethods__)}")
    return cls


class ProviderRegistry:
    """Provider classes by type, loaded on demand into one plugin manager."""

    def __init__(self, plugin_manager: pluggy.PluginManager) -> None:
        self._pm = plugin_manager
        self._classes: dict[str, type[Provider]] = {}

    @staticmethod
    def _check_class(cls: Any) -> type[Provider]:
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise ConfigError(f"{cls!r} registered as a provider is not a subclass of authcore.Provider")
        return cls

    def get(self, type_name: str) -> type[Provider]:
        """The provider class for *type_name*, importing its package the first time."""
        cls = self._classes.get(type_name)
        if cls is not None:
            return cls
        entries = {e.name: e for e in installed_providers()}
        entry = entries.get(type_name)
        if entry is None:
            raise UnknownProvider(_unknown_type_message(type_name, entries))
        ep = next(ep for ep in _entry_points(PROVIDER_GROUP) if ep.name == type_name)
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken provider package must not look like a missing one
            raise ConfigError(
                f"provider type {type_name!r} from {entry.distribution!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        self._add_plugin(plugin, type_name)
        cls = self._classes.get(type_name)
        if cls is None:
            raise ConfigError(
                f"distribution {entry.distribution!r} declares provider type {type_name!r} "
                f"but registers no provider class of that type"
            )
        return cls

    def _add_plugin(self, plugin: Any, name: str) -> None:
        # Only a class whose ``type`` is this entry point's name is taken, and only under that
        # name: the entry-point name is the type a distribution owns. Otherwise a package
        # installed for type "evil" could register a class of type "ldap" and, loaded first,
        # take the place of the real LDAP provider for every later configuration entry.
        if isinstance(plugin, type) and issubclass(plugin, Provider):
            offered: list[type[Provider]] = [plugin]  # an entry point may name the class directly
        else:
            if not self._pm.is_registered(plugin):
                self._pm.register(plugin, name=f"provider:{name}")
            # Asked again for each entry point of a module that serves several types.
            offered = []
            impls = self._pm.hook.authcore_register_providers.get_hookimpls()
            for impl in impls:
                if impl.plugin is plugin:
                    impl.function(register=lambda cls: offered.append(self._check_class(cls)))
        for cls in offered:
            if cls.type == name:
                self._classes.setdefault(name, cls)
                return

    def types(self) -> Iterable[str]:
        """Types loaded so far."""
        return tuple(self._classes)


def _unknown_type_message(type_name: str, entries: dict[str, InstalledProvider]) -> str:
    """Which types are installed, the closest one to a typo, and how to install *type_name* if it is ours.

    ``pip install auth-<type>`` is suggested only for the authcore project's own types: for any
    other name it would fetch an unrelated package, or nothing, from the package index.
    """
    installed = ", ".join(sorted(entries)) or "none"
    message = f"provider type {type_name!r} is not installed (installed: {installed})"
    folded = _folded(type_name)
    candidates = sorted({*entries, *SHIPPED_TYPES})
    close = difflib.get_close_matches(folded, candidates, n=1, cutoff=0.6)
    wanted = type_name if type_name in SHIPPED_TYPES else (close[0] if close else None)
    if wanted is not None and wanted in entries:
        return f"{message}; did you mean {wanted!r}?"
    if wanted is not None and wanted in SHIPPED_TYPES:
        # Ours require authcore>=0.2, which the unrelated 'authcore' 0.1.x on the index can never satisfy;
        # where the index has no auth-<type> at all, our wheels are installed from a directory.
        hint = f"pip install auth-{wanted}{_FROM_WHEELS}"
        if wanted != type_name:
            return f"{message}; did you mean {wanted!r}? Install it with: {hint}"
        return f"{message}; install it with: {hint}"
    return f"{message}; install the distribution that provides it"

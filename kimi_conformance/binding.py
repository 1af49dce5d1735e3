"""The binding: where the Kimi implementation lives inside the build under test.

Defaults are CONTRACT.md's names. A fork that moved or renamed something declares
the new location in a TOML file (``--binding FILE``, the ``kimi_binding`` ini
option, or ``KIMI_CONFORMANCE_BINDING``)::

    [binding]
    provider_class = "letta.schemas.providers.moonshot:MoonshotProvider"
    provider_name = "moonshot"
    settings_base_url = false      # this build has no base-URL setting

A location is ``module:attribute.path``; a value is a non-empty string; any role may
be ``false``: the build has no such thing. Reading an absent role raises
:class:`RoleAbsent` (its text is the one line a behaviour that needs the role fails
with); suites ask :meth:`Binding.absent` first. ``python3 -m kimi_conformance
discover`` proposes a binding for a build.

What is a usage error and what is a verdict (the rule :meth:`Binding.problems` applies;
the plugin's controller runs it once, before any test and before xdist starts workers):

- The binding file is the user's input. A file that is not TOML, an unknown key
  anywhere in it, a declared location that does not resolve, a role (declared or
  default) that resolves to the wrong kind (a function where a class is due, a settings
  field the settings model does not have): usage error, exit 4, one line per problem.
- The default provider location not resolving (nothing declared) is a verdict: "this
  build has no Kimi provider" (exit 6); so is ``provider_class = false``.
- The provider found, another role's *default* name not resolving: the build uses
  names of its own, and the kit cannot tell a rename from a removal, so it asks rather
  than guess: usage error naming the role, suggesting its location, ``false`` or
  ``discover``. Once the binding says ``false``, each behaviour that needs the role is
  judged on the absence (red under its ID, never a crash): that is how a build that
  lacks something the contract promises (no base-URL setting, no Kimi client class)
  gets its verdict, and how a defect that deletes a role declares it (its ``binding``,
  e.g. ``fixtures/defects/no-base-url-no-flag.toml``).
- Everything present but misbehaving (a factory that returns another client, a setting
  the server ignores, a flag never read, a variable read under another name) is the
  build breaking a promise: red under the behaviour's ID. Variable names and the
  provider's name are not looked up at start-up: only the build's behaviour tells
  whether it honours them.
"""

from __future__ import annotations

import enum
import importlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

# role -> default location(s); the first that resolves wins
LOCATIONS: dict[str, tuple[str, ...]] = {
    "provider_class": ("letta.schemas.providers:KimiProvider", "letta.schemas.providers.kimi:KimiProvider"),
    "provider_type": ("letta.schemas.enums:ProviderType.kimi",),
    "provider_category_base": ("letta.schemas.enums:ProviderCategory.base",),
    "provider_category_byok": ("letta.schemas.enums:ProviderCategory.byok",),
    "settings": ("letta.settings:model_settings",),
    "client_class": ("letta.llm_api.kimi_client:KimiClient",),
    "client_factory": ("letta.llm_api.llm_client:LLMClient.create",),
    "server_class": ("letta.server.server:SyncServer",),
    "llm_config_class": ("letta.schemas.llm_config:LLMConfig",),
    "llm_error": ("letta.errors:LLMError",),
    "auth_error": ("letta.errors:LLMAuthenticationError",),
    "unauthenticated_code": ("letta.errors:ErrorCode.UNAUTHENTICATED",),
    "handle_not_found_error": ("letta.errors:HandleNotFoundError",),
}

# plain values (names of things rather than locations)
VALUES: dict[str, str] = {
    "provider_name": "kimi",
    "settings_api_key": "kimi_api_key",
    "settings_base_url": "kimi_base_url",
    "api_key_env": "KIMI_API_KEY",
    "base_url_env": "KIMI_BASE_URL",
    "disable_env": "LETTA_DISABLE_KIMI_PROVIDER",
    "default_base_url": "https://api.moonshot.cn/v1",
}

# role -> what it is, in the field's words ("this build has no <description>")
ROLE_DESCRIPTIONS: dict[str, str] = {
    "provider_class": "Kimi provider class",
    "provider_type": "Kimi provider type (ProviderType member)",
    "provider_category_base": "base provider category (ProviderCategory member)",
    "provider_category_byok": "user-stored (byok) provider category (ProviderCategory member)",
    "settings": "settings object",
    "client_class": "Kimi client class",
    "client_factory": "LLM client factory",
    "server_class": "server class",
    "llm_config_class": "LLM config class",
    "llm_error": "LLM error class",
    "auth_error": "authentication error class",
    "unauthenticated_code": "'unauthenticated' error code",
    "handle_not_found_error": "handle-not-found error class",
    "provider_name": "name for the environment's Kimi provider",
    "settings_api_key": "API-key setting",
    "settings_base_url": "base-URL setting",
    "api_key_env": "API-key environment variable",
    "base_url_env": "base-URL environment variable",
    "disable_env": "disabling flag",
    "default_base_url": "default base URL",
}

ENV_VAR = "KIMI_CONFORMANCE_BINDING"
DISCOVER_HINT = "python3 -m kimi_conformance discover"


class BindingConfigError(Exception):
    """The binding configuration is unusable (bad file, unknown key, missing target)."""


class MissingTarget(LookupError):
    """A location does not resolve in this build."""

    def __init__(self, role: str, location: str, reason: str):
        self.role, self.location, self.reason = role, location, reason
        super().__init__(f"{role} = {location!r}: {reason}")


class RoleAbsent(LookupError):
    """The binding declares the role absent (``role = false``); str() is the verdict line."""

    def __init__(self, role: str):
        self.role = role
        super().__init__(absence_line(role))

    def __str__(self) -> str:
        return self.args[0]


def absence_line(role: str) -> str:
    return f"this build has no {ROLE_DESCRIPTIONS[role]} (binding: {role} = false)"


def resolve_location(location: str, role: str = "?") -> Any:
    if ":" not in location:
        raise MissingTarget(role, location, "a location is 'module:attribute' (e.g. 'letta.errors:LLMError')")
    module_name, _, attr_path = location.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise MissingTarget(role, location, f"module {e.name} not found") from None
    except Exception as e:  # an import that crashes is the build's problem: name it
        raise MissingTarget(role, location, f"importing {module_name} raised {type(e).__name__}: {e}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise MissingTarget(role, location, f"{module_name} has no attribute {attr_path}") from None
    return obj


@dataclass
class Binding:
    locations: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(LOCATIONS))
    values: dict[str, str] = field(default_factory=lambda: dict(VALUES))
    declared: set[str] = field(default_factory=set)
    absent_roles: set[str] = field(default_factory=set)
    source: str = "default"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getattr__(self, role: str) -> Any:
        if role.startswith("_") or role in ("locations", "values", "declared", "absent_roles", "source"):
            raise AttributeError(role)
        if role in self.values:
            if role in self.absent_roles:
                raise RoleAbsent(role)
            return self.values[role]
        if role in self.locations:
            return self.resolve(role)
        raise AttributeError(role)

    def absent(self, role: str) -> bool:
        """Whether the binding declares ``role = false`` (the build has no such thing)."""
        if role not in ROLE_DESCRIPTIONS:
            raise KeyError(f"no binding role {role!r} (known roles: {', '.join(sorted(ROLE_DESCRIPTIONS))})")
        return role in self.absent_roles

    def absence(self, role: str) -> str:
        """The one line a behaviour that needs an absent role fails (or warns) with."""
        self.absent(role)  # an unknown role is a kit bug: say so
        return absence_line(role)

    def resolve(self, role: str) -> Any:
        if role in self.absent_roles:
            raise RoleAbsent(role)
        if role not in self._cache:
            last: MissingTarget | None = None
            for location in self.locations[role]:
                try:
                    self._cache[role] = resolve_location(location, role)
                    break
                except MissingTarget as e:
                    last = e
            else:
                raise last  # type: ignore[misc]
        return self._cache[role]

    def describe(self) -> dict:
        return {
            "source": self.source,
            **{role: " | ".join(locs) for role, locs in self.locations.items()},
            **self.values,
            **{role: "false" for role in self.absent_roles},
        }

    def check_declared(self) -> None:
        """Every location the user declared must resolve: else a usage error naming it."""
        problems = self.problems(provider_found=False)  # declared roles only
        if problems:
            raise BindingConfigError(problems[0].line)

    def problems(self, provider_found: bool = True) -> list[Problem]:
        """Every role resolved and checked for its kind (see the module's docstring).

        Declared roles are always checked; default ones only when the provider was found
        (without it, the build has no Kimi provider: one verdict, nothing else to ask).
        """
        found: list[Problem] = []
        for role in [*LOCATIONS, *VALUES]:
            if role in self.absent_roles or (role not in self.declared and not provider_found):
                continue
            reason = self._kind_problem(role)
            if reason is not None:
                found.append(Problem(role, self._problem_line(role, reason)))
        if not {"llm_error", "auth_error"} & ({p.role for p in found} | self.absent_roles) and (provider_found or "auth_error" in self.declared):
            if not issubclass(self.auth_error, self.llm_error):
                found.append(Problem("auth_error", self._problem_line("auth_error", f"{_name(self.auth_error)} is not a subclass of llm_error ({_name(self.llm_error)})")))
        return found

    def _kind_problem(self, role: str) -> str | None:
        """Why the role does not resolve to the kind it must be (None: it does)."""
        if role in VALUES:
            value = self.values[role]
            if role in SETTINGS_FIELDS:
                if "settings" in self.absent_roles:
                    return f"{value!r} names a field of the settings object, which the binding declares absent (settings = false): declare {role} = false too"
                try:
                    settings = self.resolve("settings")
                except MissingTarget:
                    return None  # said under `settings`
                if not KINDS["settings"].accepts(settings):
                    return None  # said under `settings`
                fields = _model_fields(settings)
                if fields is not None and value not in fields:
                    return f"{value!r} is not a field of the settings model {type(settings).__name__}" + (
                        "" if role in self.declared else " (the kit's default name)")
            if role == "default_base_url" and not value.startswith(("http://", "https://")):
                return f"{value!r} is not an http(s) URL"
            return None
        try:
            obj = self.resolve(role)
        except MissingTarget as e:
            return f"{' | '.join(self.locations[role])} does not resolve ({e.reason})"
        want = KINDS[role]
        if want.accepts(obj):
            return None
        return f"{' | '.join(self.locations[role])} is {_what(obj)}, not {want.description}"

    def _problem_line(self, role: str, reason: str) -> str:
        if role in self.declared:
            return f"binding ({self.source}): {role}: {reason}"
        what = "where this build keeps" if role in LOCATIONS else "this build's name for"
        return (
            f"binding ({self.source}): {role}: {reason}; the Kimi provider was found, so declare {what} its "
            f"{ROLE_DESCRIPTIONS[role]}, or {role} = false if it has none (`{DISCOVER_HINT}` proposes a binding)"
        )


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _what(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {_name(obj)}"
    if isinstance(obj, enum.Enum):
        return f"the enum member {obj!r}"
    if callable(obj):
        return f"the callable {_name(obj)} ({type(obj).__name__})"
    if isinstance(obj, ModuleType):
        return f"the module {obj.__name__}"
    return f"a {type(obj).__name__} ({obj!r:.60})"


def _model_fields(obj: Any) -> set[str] | None:
    """The field names of a settings object (pydantic v2 or v1); None when it has no model."""
    fields = getattr(type(obj), "model_fields", None)
    if fields is None:
        fields = getattr(type(obj), "__fields__", None)
    return set(fields) if isinstance(fields, dict) else None


@dataclass(frozen=True)
class Kind:
    description: str
    accepts: Callable[[Any], bool]


_CLASS = Kind("a class", lambda obj: isinstance(obj, type))
_EXCEPTION = Kind("an exception class", lambda obj: isinstance(obj, type) and issubclass(obj, BaseException))
_MEMBER = Kind("an enum member", lambda obj: isinstance(obj, enum.Enum))
KINDS: dict[str, Kind] = {
    "provider_class": _CLASS,
    "client_class": _CLASS,
    "server_class": _CLASS,
    "llm_config_class": _CLASS,
    "llm_error": _EXCEPTION,
    "auth_error": _EXCEPTION,
    "handle_not_found_error": _EXCEPTION,
    "provider_type": _MEMBER,
    "provider_category_base": _MEMBER,
    "provider_category_byok": _MEMBER,
    "unauthenticated_code": _MEMBER,
    "settings": Kind("a settings object (an instance of a settings model)",
                     lambda obj: not isinstance(obj, (type, ModuleType)) and _model_fields(obj) is not None),
    "client_factory": Kind("a callable factory", lambda obj: callable(obj) and not isinstance(obj, type)),
}
SETTINGS_FIELDS = ("settings_api_key", "settings_base_url")


@dataclass(frozen=True)
class Problem:
    role: str
    line: str


def load(path: str | os.PathLike | None) -> Binding:
    """The binding from a TOML file (``[binding]`` table or top-level keys), or the default."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        return Binding()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise BindingConfigError(f"binding file {p}: cannot be read ({e.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BindingConfigError(f"binding file {p}: not valid TOML ({e})") from None
    table = data.get("binding", data)
    if not isinstance(table, dict):
        raise BindingConfigError(f"binding file {p}: [binding] must be a table")
    if table is not data:
        others = sorted(set(data) - {"binding"})
        if others:
            raise BindingConfigError(f"binding file {p}: unknown key {others[0]!r} outside [binding] (every key goes in the [binding] table)")
    binding = Binding(source=str(p))
    for key, value in table.items():
        if key not in ROLE_DESCRIPTIONS:
            known = ", ".join(sorted(ROLE_DESCRIPTIONS))
            raise BindingConfigError(f"binding file {p}: unknown key {key!r} (known keys: {known})")
        if value is False:
            binding.absent_roles.add(key)
        elif key in LOCATIONS:
            if not isinstance(value, str) or not value:
                raise BindingConfigError(f"binding file {p}: {key} must be a 'module:attribute' string or false")
            binding.locations[key] = (value,)
        else:
            if not isinstance(value, str) or not value:
                raise BindingConfigError(f"binding file {p}: {key} must be a non-empty string or false")
            binding.values[key] = value
        binding.declared.add(key)
    return binding

"""The binding: where the Kimi implementation lives inside the build under test.

Defaults are CONTRACT.md's names. A fork that moved or renamed something declares
the new location in a TOML file (``--binding FILE``, the ``kimi_binding`` ini
option, or ``KIMI_CONFORMANCE_BINDING``)::

    [binding]
    provider_class = "letta.schemas.providers.moonshot:MoonshotProvider"
    provider_name = "moonshot"

A location is ``module:attribute.path``. Declared locations must exist (else a
usage error naming the key); the default provider location missing means the
build has no Kimi provider (one verdict, everything else not applicable).
"""

from __future__ import annotations

import importlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

ENV_VAR = "KIMI_CONFORMANCE_BINDING"


class BindingConfigError(Exception):
    """The binding configuration is unusable (bad file, unknown key, missing target)."""


class MissingTarget(LookupError):
    """A location does not resolve in this build."""

    def __init__(self, role: str, location: str, reason: str):
        self.role, self.location, self.reason = role, location, reason
        super().__init__(f"{role} = {location!r}: {reason}")


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
    source: str = "default"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getattr__(self, role: str) -> Any:
        if role.startswith("_") or role in ("locations", "values", "declared", "source"):
            raise AttributeError(role)
        if role in self.values:
            return self.values[role]
        if role in self.locations:
            return self.resolve(role)
        raise AttributeError(role)

    def resolve(self, role: str) -> Any:
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
        }

    def check_declared(self) -> None:
        """Every location the user declared must resolve: else a usage error naming it."""
        for role in sorted(self.declared & set(self.locations)):
            try:
                self.resolve(role)
            except MissingTarget as e:
                raise BindingConfigError(f"binding ({self.source}): {e}") from None


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
    binding = Binding(source=str(p))
    for key, value in table.items():
        if key in LOCATIONS:
            if not isinstance(value, str):
                raise BindingConfigError(f"binding file {p}: {key} must be a 'module:attribute' string")
            binding.locations[key] = (value,)
        elif key in VALUES:
            if not isinstance(value, str) or not value:
                raise BindingConfigError(f"binding file {p}: {key} must be a non-empty string")
            binding.values[key] = value
        else:
            known = ", ".join(sorted([*LOCATIONS, *VALUES]))
            raise BindingConfigError(f"binding file {p}: unknown key {key!r} (known keys: {known})")
        binding.declared.add(key)
    return binding

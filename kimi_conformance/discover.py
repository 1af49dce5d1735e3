"""``python3 -m kimi_conformance discover``: inspect a build and propose a binding.

Run from the command line, it starts the build's interpreter on this module
(``python -m kimi_conformance.discover --inspect-to FILE``), which imports the build
and looks for its Kimi implementation without relying on the kit's default names:

- provider classes (subclasses of Letta's ``Provider``) whose name, module or
  ``provider_type`` mentions Kimi or Moonshot, and the ``ProviderType`` members that do;
- fields of the settings object (``model_settings``) that do (API key, base URL), with
  the environment variables they are read from;
- client classes (subclasses of Letta's ``LLMClientBase``) that do, and the client
  factory's cases (``case ProviderType.<member>:`` in ``LLMClient.create``);
- the server's enabling code: the variables ``letta/server/*.py`` reads that mention
  Kimi or Moonshot (a ``LETTA_DISABLE_*`` flag) and the name it enables the provider under.

It prints what it found and where, which roles look absent (``false``), what it could not
decide, and with ``--write FILE`` writes a binding usable as ``--binding FILE``. The
plugin's "no Kimi provider" verdict uses :func:`hint` (a scan of the already-imported
build, no process started) to say when ``discover`` would find a provider.

The launcher part uses the standard library only (like ``cli``); the inspection runs
inside the build's environment.
"""

from __future__ import annotations

import argparse
import ast
import enum
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from kimi_conformance.binding import DISCOVER_HINT, LOCATIONS, ROLE_DESCRIPTIONS, VALUES

MENTION = re.compile(r"kimi|moonshot", re.IGNORECASE)
ENV_READ = re.compile(r"""(?:getenv|environ\.get|environ\[)\(?\s*["']([A-Z0-9_]*(?:KIMI|MOONSHOT)[A-Z0-9_]*)["']""")
PROVIDER_PACKAGE = "letta.schemas.providers"
CLIENT_PACKAGE = "letta.llm_api"
SERVER_PACKAGE = "letta.server"
EXIT_FOUND, EXIT_USAGE, EXIT_NO_KIMI = 0, 4, 6


# --------------------------------------------------------------------------------------
# inside the build


def _mentions(*texts: object) -> bool:
    return any(MENTION.search(str(t)) for t in texts if t)


def _import(name: str):
    try:
        return importlib.import_module(name)
    except Exception:  # a module of the build that does not import is not a candidate
        return None


def _modules_of(package_name: str, names_only: bool = False) -> list[str]:
    package = _import(package_name)
    if package is None or not hasattr(package, "__path__"):
        return []
    names = [package_name] + [f"{package_name}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    return names if names_only else [n for n in names if _import(n) is not None]


def _classes_in(module_names: list[str], base: type | None) -> list[type]:
    seen: dict[int, type] = {}
    for name in module_names:
        module = sys.modules.get(name)
        for obj in list(vars(module).values()) if module else []:
            if isinstance(obj, type) and base is not None and issubclass(obj, base) and obj is not base:
                seen.setdefault(id(obj), obj)
    return list(seen.values())


def _location(cls: type, public: str | None = None) -> str:
    """``module:Name``, the package's public export when it has one."""
    if public and getattr(sys.modules.get(public), cls.__name__, None) is cls:
        return f"{public}:{cls.__name__}"
    return f"{cls.__module__}:{cls.__qualname__}"


def _field_default(cls: type, name: str) -> Any:
    fields = getattr(cls, "model_fields", None) or getattr(cls, "__fields__", None) or {}
    info = fields.get(name)
    return getattr(info, "default", None) if info is not None else None


def _provider_base() -> type | None:
    for module in (PROVIDER_PACKAGE, f"{PROVIDER_PACKAGE}.base"):
        base = getattr(_import(module), "Provider", None)
        if isinstance(base, type):
            return base
    return None


def provider_candidates(import_modules: bool = True) -> list[type]:
    """Provider classes whose name, module or provider_type mentions Kimi or Moonshot."""
    base = _provider_base()
    if import_modules:
        modules = _modules_of(PROVIDER_PACKAGE)
    else:
        modules = [n for n in list(sys.modules) if n.startswith("letta.")]
    return [
        cls for cls in _classes_in(modules, base)
        if _mentions(cls.__name__, cls.__module__, _field_default(cls, "provider_type"))
    ]


def hint() -> str:
    """For the 'no Kimi provider' verdict: what ``discover`` would find here (or nothing).

    Cheap: classes of the already-imported build and the provider package's module
    names; nothing is imported, no process is started.
    """
    try:
        classes = provider_candidates(import_modules=False)
        found = [_location(cls, PROVIDER_PACKAGE) for cls in classes]
        found += [f"module {name}" for name in _modules_of(PROVIDER_PACKAGE, names_only=True)
                  if _mentions(name.rpartition(".")[2]) and name not in {cls.__module__ for cls in classes}]
    except Exception:  # a hint never turns a verdict into a crash
        return ""
    if not found:
        return ""
    return (f"; `{this_build_command()}` found {', '.join(sorted(found))}: run it (with --write FILE) "
            f"and pass the binding it proposes with --binding FILE")


def this_build_command() -> str:
    """The discover command for the build this process runs (its interpreter, and the folder
    its ``letta/`` comes from when that is not the interpreter's own site-packages)."""
    import letta

    command = f"{DISCOVER_HINT} --python {sys.executable}"
    root = Path(letta.__file__).resolve().parent.parent
    if root.name not in ("site-packages", "dist-packages"):
        command += f" --letta-path {root}"
    return command


class Inspection:
    """What one build has, role by role (run inside the build's interpreter)."""

    def __init__(self) -> None:
        self.roles: dict[str, str | bool] = {}  # role -> location / value / False (absent)
        self.where: dict[str, str] = {}  # role -> how it was found
        self.found: list[str] = []
        self.undecided: list[str] = []

    def set(self, role: str, value: str | bool, where: str) -> None:
        self.roles[role], self.where[role] = value, where

    def as_dict(self) -> dict:
        import letta

        return {"letta_version": getattr(letta, "__version__", None), "letta_path": str(Path(letta.__file__).parent),
                "roles": self.roles, "where": self.where, "found": self.found, "undecided": self.undecided}

    # -- the parts -----------------------------------------------------------------------
    def run(self) -> Inspection:
        provider = self.provider()
        member = self.provider_type(provider)
        self.settings(provider)
        self.client(member)
        self.server(provider)
        return self

    def provider(self) -> type | None:
        candidates = provider_candidates()
        for cls in candidates:
            self.found.append(f"provider class {_location(cls, PROVIDER_PACKAGE)} (subclass of Provider; "
                              f"provider_type default {_field_default(cls, 'provider_type')!r})")
        if not candidates:
            self.set("provider_class", False, f"no subclass of Provider in {PROVIDER_PACKAGE} mentions Kimi or Moonshot")
            return None
        # a fork that keeps an OpenAI-compatible base besides its own: the most specific name wins
        candidates.sort(key=lambda c: (not _mentions(c.__name__), len(c.__mro__) * -1))
        chosen = candidates[0]
        if len(candidates) > 1:
            self.undecided.append(f"provider_class: {len(candidates)} candidates ({', '.join(c.__name__ for c in candidates)}); "
                                  f"proposed {chosen.__name__}")
        self.set("provider_class", _location(chosen, PROVIDER_PACKAGE), "subclass of Provider mentioning Kimi/Moonshot")
        return chosen

    def provider_type(self, provider: type | None) -> str | None:
        enums = _import("letta.schemas.enums")
        provider_type = getattr(enums, "ProviderType", None)
        if not (isinstance(provider_type, type) and issubclass(provider_type, enum.Enum)):
            self.undecided.append("provider_type: letta.schemas.enums has no ProviderType enum")
            return None
        members = [m for m in provider_type if _mentions(m.name, m.value)]
        for m in members:
            self.found.append(f"ProviderType.{m.name} = {m.value!r} (letta.schemas.enums)")
        default = _field_default(provider, "provider_type") if provider else None
        if isinstance(default, provider_type):
            chosen = default
            where = f"the default provider_type of {provider.__name__}"
        elif len(members) == 1:
            chosen, where = members[0], "the only ProviderType member mentioning Kimi/Moonshot"
        else:
            if members:
                self.undecided.append(f"provider_type: several members ({', '.join(m.name for m in members)})")
            else:
                self.set("provider_type", False, "no ProviderType member mentions Kimi or Moonshot")
            return None
        self.set("provider_type", f"letta.schemas.enums:ProviderType.{chosen.name}", where)
        return chosen.name

    # words that name an API-key field and a base-URL field (forks say token/endpoint/host too)
    SETTINGS_WORDS = (("settings_api_key", ("key", "token"), "api_key_env"), ("settings_base_url", ("url", "base", "endpoint", "host"), "base_url_env"))

    def settings(self, provider: type | None) -> None:
        """The settings object and its key / base-URL fields: ``model_settings`` fields that mention
        Kimi/Moonshot, else the fields of another settings object of ``letta.settings`` whose name
        mentions them (a fork's own ``moonshot_settings``). A role is proposed ``false`` only where
        no settings object mentions Kimi/Moonshot at all; otherwise what was not matched is undecided."""
        settings_module = _import("letta.settings")
        settings = getattr(settings_module, "model_settings", None)
        fields = getattr(type(settings), "model_fields", None) if settings is not None else None
        if not isinstance(fields, dict):
            self.undecided.append("settings: letta.settings has no model_settings object with fields")
            return
        location, mentioned = "letta.settings:model_settings", [name for name in fields if _mentions(name)]
        if not mentioned:
            own = [(name, obj) for name, obj in vars(settings_module).items()
                   if name != "model_settings" and isinstance(getattr(type(obj), "model_fields", None), dict)
                   and not isinstance(obj, type) and _mentions(name, type(obj).__name__)]
            if len(own) == 1:
                name, settings = own[0]
                fields, location, mentioned = type(settings).model_fields, f"letta.settings:{name}", list(type(settings).model_fields)
                self.set("settings", location, f"the settings object of letta.settings whose name mentions Kimi/Moonshot ({type(settings).__name__})")
            elif own:
                self.undecided.append(f"settings: several settings objects mention Kimi/Moonshot ({', '.join(n for n, _ in own)})")
                return
        short = location.partition(":")[2]
        for name in mentioned:
            self.found.append(f"settings field {short}.{name} (env {self.env_name(settings, name)}, "
                              f"default {fields[name].default!r})")
        for role, words, env_role in self.SETTINGS_WORDS:
            # another provider's field kept on the same object (an OpenAI key beside the Kimi one) is not a candidate
            matches = [n for n in mentioned if any(w in n.lower() for w in words) and "openai" not in n.lower()]
            if len(matches) == 1:
                self.set(role, matches[0], f"{short} field mentioning Kimi/Moonshot")
                self.set(env_role, self.env_name(settings, matches[0]), f"the variable {short}.{matches[0]} is read from")
                if role == "settings_base_url" and isinstance(fields[matches[0]].default, str):
                    self.set("default_base_url", fields[matches[0]].default, f"the default of {short}.{matches[0]}")
            elif matches:
                self.undecided.append(f"{role}: several fields of {short} ({', '.join(matches)})")
            elif not mentioned:
                self.set(role, False, f"no settings object of letta.settings mentions Kimi/Moonshot and {' or '.join(words)}")
            else:
                self.set(role, False, f"no field of {short} mentioning Kimi/Moonshot names {' or '.join(words)} ({', '.join(mentioned)})")
        if "default_base_url" not in self.roles and provider is not None:
            default = _field_default(provider, "base_url")
            if isinstance(default, str) and default.startswith("http"):
                self.set("default_base_url", default, f"the default base_url of {provider.__name__}")

    @staticmethod
    def env_name(settings: Any, field_name: str) -> str:
        """The variable a pydantic-settings field is read from (its alias, else prefix + name, upper case)."""
        info = type(settings).model_fields[field_name]
        alias = getattr(info, "validation_alias", None) or getattr(info, "alias", None)
        if isinstance(alias, str):
            return alias.upper()
        prefix = (getattr(settings, "model_config", {}) or {}).get("env_prefix", "") or ""
        return f"{prefix}{field_name}".upper()

    def client(self, member: str | None) -> None:
        base = getattr(_import("letta.llm_api.llm_client_base"), "LLMClientBase", None)
        modules = _modules_of(CLIENT_PACKAGE)
        clients = [c for c in _classes_in(modules, base if isinstance(base, type) else None) if _mentions(c.__name__, c.__module__)]
        for cls in clients:
            self.found.append(f"client class {_location(cls)} (bases: {', '.join(b.__name__ for b in cls.__bases__)})")
        factory = getattr(getattr(_import("letta.llm_api.llm_client"), "LLMClient", None), "create", None)
        cases = factory_cases(factory) if callable(factory) else {}
        if cases:
            self.found.append("client factory letta.llm_api.llm_client:LLMClient.create cases: "
                              + ", ".join(f"ProviderType.{m} -> {c or '?'}" for m, c in sorted(cases.items())))
        else:
            self.undecided.append("client_factory: no `case ProviderType.<member>:` found in LLMClient.create")
        dispatched = cases.get(member) if member else None
        by_name = {c.__name__: c for c in clients}
        if dispatched and dispatched in by_name:
            self.set("client_class", _location(by_name[dispatched]), f"what LLMClient.create returns for ProviderType.{member}")
        elif len(clients) == 1:
            self.set("client_class", _location(clients[0]), "the only client class mentioning Kimi/Moonshot")
            if member and member not in cases:
                self.undecided.append(f"client_class: LLMClient.create has no case for ProviderType.{member}")
        elif clients:
            self.undecided.append(f"client_class: several candidates ({', '.join(c.__name__ for c in clients)})")
        else:
            self.set("client_class", False, f"no subclass of LLMClientBase in {CLIENT_PACKAGE} mentions Kimi/Moonshot")

    def server(self, provider: type | None) -> None:
        sources = {}
        for name in _modules_of(SERVER_PACKAGE, names_only=True):
            spec = importlib.util.find_spec(name)
            if spec and spec.origin and spec.origin.endswith(".py"):
                sources[name] = Path(spec.origin).read_text(encoding="utf-8", errors="replace")
        variables: dict[str, list[str]] = {}
        for name, text in sources.items():
            for var in ENV_READ.findall(text):
                variables.setdefault(var, []).append(name)
        for var, where in sorted(variables.items()):
            self.found.append(f"the server reads {var} ({', '.join(sorted(set(where)))})")
        flags = sorted(v for v in variables if "DISABLE" in v)
        if len(flags) == 1:
            self.set("disable_env", flags[0], f"read in {variables[flags[0]][0]}")
        elif flags:
            self.undecided.append(f"disable_env: several flags ({', '.join(flags)})")
        else:
            self.set("disable_env", False, f"no variable mentioning Kimi/Moonshot and DISABLE is read in {SERVER_PACKAGE}")
        for role, word in (("api_key_env", "KEY"), ("base_url_env", "URL")):
            read = sorted(v for v in variables if word in v and "DISABLE" not in v)
            if role not in self.roles and len(read) == 1:
                self.set(role, read[0], f"read in {variables[read[0]][0]}")
            elif role not in self.roles and not read and role == "base_url_env":
                self.set(role, False, "no base-URL setting and no base-URL variable read by the server")
        if provider is not None:
            self.provider_name(provider, sources)

    def provider_name(self, provider: type, sources: dict[str, str]) -> None:
        names = set()
        for text in sources.values():
            for match in re.finditer(rf"\b{re.escape(provider.__name__)}\(", text):
                near = re.search(r"""\bname\s*=\s*["']([^"']+)["']""", text[match.end():match.end() + 600])
                if near:
                    names.add(near.group(1))
        if len(names) == 1:
            self.set("provider_name", names.pop(), f"the name the server enables {provider.__name__} under")
        elif names:
            self.undecided.append(f"provider_name: the server names {provider.__name__} {sorted(names)}")
        else:
            self.undecided.append(f"provider_name: no `{provider.__name__}(name=...)` in {SERVER_PACKAGE}: "
                                  f"the server may not enable it from the environment")


def factory_cases(factory: Any) -> dict[str, str | None]:
    """``ProviderType`` member -> the class the factory returns for it (None: not found)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(factory)))
    except (OSError, TypeError, SyntaxError):
        return {}
    cases: dict[str, str | None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.match_case):
            members = [n.attr for n in ast.walk(node.pattern) if isinstance(n, ast.Attribute)
                       and isinstance(n.value, ast.Name) and n.value.id == "ProviderType"]
            returned = _returned_class(node.body)
            for member in members:
                cases.setdefault(member, returned)
        elif isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            members = [n.attr for n in ast.walk(node.test) if isinstance(n, ast.Attribute)
                       and isinstance(n.value, ast.Name) and n.value.id == "ProviderType"]
            for member in members:
                cases.setdefault(member, _returned_class(node.body))
    return cases


def _returned_class(body: list[ast.stmt]) -> str | None:
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
                return node.value.func.id
    return None


# --------------------------------------------------------------------------------------
# the command


def proposal(found: dict) -> tuple[list[str], list[str]]:
    """(binding TOML lines, lines that say what the build has under the kit's defaults)."""
    lines, same = [], []
    for role in [*LOCATIONS, *VALUES]:
        if role not in found["roles"]:
            continue
        value, where = found["roles"][role], found["where"][role]
        default = " | ".join(LOCATIONS[role]) if role in LOCATIONS else VALUES[role]
        if value is False:
            lines.append(f"{role} = false  # {where}")
        elif value in default.split(" | "):
            same.append(f"{role} = {json.dumps(value)}  # the default; {where}")
        else:
            lines.append(f"{role} = {json.dumps(value)}  # {where}")
    return lines, same


def render(found: dict, build: str) -> tuple[str, str]:
    """(the report printed, the binding TOML)."""
    lines, same = proposal(found)
    toml = "\n".join([
        f"# binding proposed by `{DISCOVER_HINT}` for {build}",
        f"# (letta {found['letta_version']} at {found['letta_path']}); check it, then pass it with --binding",
        "[binding]", *lines, *[f"# {s}" for s in same], *[f"# could not decide: {u}" for u in found["undecided"]], "",
    ])
    report = [f"discover: letta {found['letta_version']} at {found['letta_path']}", "found:"]
    report += [f"  {f}" for f in found["found"]] or ["  nothing that mentions Kimi or Moonshot"]
    absent = [r for r, v in found["roles"].items() if v is False]
    report += ["looks absent:"] + [f"  {r} ({ROLE_DESCRIPTIONS[r]}): {found['where'][r]}" for r in absent] if absent else []
    report += ["could not decide:"] + [f"  {u}" for u in found["undecided"]] if found["undecided"] else []
    report += ["proposed binding:", textwrap.indent(toml, "  ")]
    return "\n".join(report), toml


def _target(args: argparse.Namespace) -> tuple[str, list[str], str]:
    """(interpreter, PYTHONPATH entries, the build's name for messages)."""
    if args.python:
        python = str(Path(args.python).absolute()) if os.sep in args.python else args.python  # the inspection runs elsewhere
        return python, [str(Path(args.letta_path).resolve())] if args.letta_path else [], args.letta_path or args.python
    from kimi_conformance import builds

    build = builds.ensure_build(args.build or builds.DEFAULT_BUILD)
    return str(build.python), build.pythonpath(), build.name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m kimi_conformance discover",
                                     description="Inspect a Letta build for its Kimi implementation and propose a binding.")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--build", help="a build target made by the kit (default: the reference build); see `build --list`")
    target.add_argument("--python", help="the interpreter of the environment your Letta build is installed in")
    parser.add_argument("--letta-path", help="a fork checkout whose letta/ package is put first on PYTHONPATH (with --python)")
    parser.add_argument("--write", metavar="FILE", help="write the proposed binding (TOML) to FILE")
    args = parser.parse_args(argv)
    if args.letta_path and not args.python:
        parser.error("--letta-path needs --python (the environment the fork's dependencies are installed in)")
    from kimi_conformance import builds

    try:
        python, pythonpath, name = _target(args)
    except builds.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    found = inspect_in(python, pythonpath)
    if isinstance(found, str):
        print(f"error: {found}", file=sys.stderr)
        return EXIT_USAGE
    report, toml = render(found, name)
    print(report)
    if args.write:
        try:
            Path(args.write).write_text(toml, encoding="utf-8")
        except OSError as e:
            print(f"error: cannot write {args.write} ({e.strerror})", file=sys.stderr)
            return EXIT_USAGE
        print(f"binding written to {args.write}")
    if found["roles"].get("provider_class") is False:
        print("no Kimi provider found: nothing to bind")
        return EXIT_NO_KIMI
    return EXIT_FOUND


def inspect_in(python: str, pythonpath: list[str]) -> dict | str:
    """Run the inspection in the build's interpreter (a private HOME: Letta writes ~/.letta at import)."""
    from kimi_conformance.builds import KIT_ROOT

    home = tempfile.mkdtemp(prefix="kimi-discover-home-")
    out = Path(home) / "found.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(HOME=home, PYTHONPATH=os.pathsep.join([*pythonpath, str(KIT_ROOT)]))
    try:
        done = subprocess.run([python, "-m", "kimi_conformance.discover", "--inspect-to", str(out)],
                              env=env, cwd=home, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            return f"the inspection failed in {python} (exit {done.returncode}): {tail}"
        return json.loads(out.read_text())
    except OSError as e:
        return f"cannot run {python} ({e.strerror})"
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":  # inside the build: python -m kimi_conformance.discover --inspect-to FILE
    _parser = argparse.ArgumentParser()
    _parser.add_argument("--inspect-to", required=True)
    Path(_parser.parse_args().inspect_to).write_text(json.dumps(Inspection().run().as_dict()))

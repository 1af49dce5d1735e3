"""`python3 -m kimi_conformance discover`: a binding proposed for a build the kit has never seen."""

from __future__ import annotations

import enum
import re
import subprocess
import sys

import pytest

from kimi_conformance import binding, discover
from kimi_conformance.builds import KIT_ROOT
from kimi_conformance.exitcodes import EXIT_NO_KIMI, EXIT_OK, EXIT_USAGE

RENAMED = "moonshot-named-0.11.7"  # the zoo's variant (e): everything named after Moonshot


class ProviderType(enum.Enum):  # the names the factories below compare with
    kimi = "kimi"
    moonshot = "moonshot"
    openai = "openai"


class MoonshotClient: ...


class OpenAIClient: ...


def match_factory(provider_type):
    match provider_type:
        case ProviderType.moonshot | ProviderType.kimi:
            from json import JSONDecoder  # a lazy import, as Letta's factory does

            return MoonshotClient(JSONDecoder)
        case ProviderType.openai:
            return OpenAIClient()


def if_factory(provider_type):
    if provider_type == ProviderType.moonshot:
        return MoonshotClient()
    elif provider_type == ProviderType.openai:
        return OpenAIClient()


@pytest.mark.parametrize("factory", [match_factory, if_factory])
def test_the_factory_cases_are_read_from_its_code(factory):
    """discover maps each ProviderType member the factory names to the class it returns (match or if/elif)."""
    cases = discover.factory_cases(factory)
    assert cases["moonshot"] == "MoonshotClient" and cases["openai"] == "OpenAIClient"


def test_the_proposal_declares_what_differs_and_what_is_absent(tmp_path):
    """Roles found under other names are declared, roles found absent are `false`, defaults are
    only commented; what discover could not decide is said; the file loads as a binding."""
    found = {
        "letta_version": "0.11.7", "letta_path": "/fork/letta",
        "roles": {"provider_class": "letta.schemas.providers:MoonshotProvider", "provider_name": "moonshot",
                  "settings_api_key": "kimi_api_key", "settings_base_url": False, "disable_env": False},
        "where": {"provider_class": "p", "provider_name": "n", "settings_api_key": "k", "settings_base_url": "b", "disable_env": "d"},
        "found": ["provider class ..."], "undecided": ["client_class: several candidates (A, B)"],
    }
    report, toml = discover.render(found, "a fork")
    path = tmp_path / "proposed.toml"
    path.write_text(toml)
    proposed = binding.load(path)
    assert proposed.declared == {"provider_class", "provider_name", "settings_base_url", "disable_env"}
    assert proposed.absent("settings_base_url") and proposed.absent("disable_env")
    assert '# settings_api_key = "kimi_api_key"' in toml and "# could not decide: client_class" in toml
    assert "looks absent:" in report and "could not decide:" in report


def run_discover(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kimi_conformance", "discover", *args],
                          cwd=KIT_ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def discovered(tmp_path_factory) -> tuple[subprocess.CompletedProcess, str]:
    path = tmp_path_factory.mktemp("discover") / "binding.toml"
    return run_discover("--build", RENAMED, "--write", str(path)), str(path)


def test_discover_writes_a_working_binding_for_a_renamed_build(discovered, run_kit):
    """Done-when of issue 13: on a fork that names everything after Moonshot, the binding
    discover writes makes the run green (the kit's own binding for the build is not used)."""
    done, path = discovered
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    proposed = binding.load(path)
    assert proposed.locations["provider_class"] == ("letta.schemas.providers:MoonshotProvider",)
    assert proposed.locations["provider_type"] == ("letta.schemas.enums:ProviderType.moonshot",)
    assert proposed.locations["client_class"] == ("letta.llm_api.moonshot_client:MoonshotClient",)
    assert (proposed.provider_name, proposed.settings_api_key, proposed.disable_env) == (
        "moonshot", "moonshot_api_key", "LETTA_DISABLE_MOONSHOT_PROVIDER")
    run = run_kit(RENAMED, "--binding", path)
    assert run.returncode == EXIT_OK and not run.red(), run.output[-3000:]


def test_no_provider_under_the_default_names_names_discover(run_kit, tmp_path):
    """Without a binding the renamed build gets the single no-Kimi verdict (exit 6), and it says
    what discover found and names the command."""
    empty = tmp_path / "no-binding.toml"
    empty.write_text("")
    run = run_kit(RENAMED, "--binding", str(empty))
    assert run.returncode == EXIT_NO_KIMI, run.output[-2000:]
    verdict = run.report["no_kimi_provider"]
    # the command names this run's interpreter and the build's checkout (a fork's letta/ first on PYTHONPATH)
    assert re.search(rf"`{re.escape(binding.DISCOVER_HINT)} --python \S+ --letta-path \S+` found letta\.schemas\.providers:MoonshotProvider", verdict), verdict


def test_defaults_the_renamed_build_lacks_are_one_line_each(run_kit, tmp_path):
    """The issue's case: the 4-key binding (provider, name, key field, key variable) on a fork with
    ProviderType.moonshot — exit 4 naming each role left at a default the build does not have,
    not 105 MissingTarget errors and exit 1."""
    f = tmp_path / "four-keys.toml"
    f.write_text('[binding]\nprovider_class = "letta.schemas.providers.moonshot:MoonshotProvider"\n'
                 'provider_name = "moonshot"\nsettings_api_key = "moonshot_api_key"\napi_key_env = "MOONSHOT_API_KEY"\n')
    run = run_kit(RENAMED, "--binding", str(f))
    assert run.returncode == EXIT_USAGE, run.output[-2000:]
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert [e.split(": ")[2] for e in errors] == ["provider_type", "client_class", "settings_base_url"], errors
    assert all("= false" in e and "discover" in e for e in errors) and "MissingTarget" not in run.output


@pytest.mark.parametrize(
    ("build", "absent"),
    [("no-base-url-no-flag-0.11.7", {"settings_base_url", "base_url_env", "disable_env"}),
     ("upstream-0.11.7", {"provider_class"})],
)
def test_what_a_build_lacks_is_proposed_as_false(tmp_path, build, absent):
    """No base-URL setting, variable or flag read by the server → `false`; no provider at all → exit 6."""
    path = tmp_path / "binding.toml"
    done = run_discover("--build", build, "--write", str(path))
    assert done.returncode == (EXIT_NO_KIMI if "provider_class" in absent else EXIT_OK), done.stdout + done.stderr
    assert absent <= binding.load(path).absent_roles


def test_an_unknown_build_is_a_usage_error():
    done = run_discover("--build", "no-such-build-0.0.0")
    assert done.returncode == EXIT_USAGE and done.stderr.startswith("error:") and "Traceback" not in done.stderr



def test_a_forks_own_settings_object_is_proposed_not_declared_absent(monkeypatch):
    """Fresh-eyes finding: a fork whose key and base URL live on a settings object of its own
    (`moonshot_platform_settings.token` / `.endpoint`, env MOONSHOT_TOKEN / MOONSHOT_ENDPOINT)
    gets them proposed — `false` there turns a correct build red. A field of another provider
    on the same object (`openai_api_key`) is not a candidate."""
    import types

    from pydantic_settings import BaseSettings, SettingsConfigDict

    class ModelSettings(BaseSettings):
        openai_api_key: str | None = None

    class MoonshotPlatformSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="moonshot_")
        token: str | None = None
        endpoint: str | None = None
        openai_api_key: str | None = None

    fake = types.ModuleType("letta.settings")
    fake.model_settings, fake.moonshot_platform_settings = ModelSettings(), MoonshotPlatformSettings()
    monkeypatch.setitem(sys.modules, "letta.settings", fake)
    inspection = discover.Inspection()
    inspection.settings(None)
    roles = inspection.roles
    assert roles["settings"] == "letta.settings:moonshot_platform_settings"
    assert (roles["settings_api_key"], roles["settings_base_url"]) == ("token", "endpoint")
    assert (roles["api_key_env"], roles["base_url_env"]) == ("MOONSHOT_TOKEN", "MOONSHOT_ENDPOINT")


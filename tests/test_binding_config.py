"""Binding configuration: loading, roles declared absent, and one clear usage error per problem."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from kimi_conformance import binding
from kimi_conformance.exitcodes import EXIT_NO_KIMI, EXIT_USAGE

# A stand-in for a build's modules: one of each kind a role may need (in-process, no Letta import).
FAKE_BUILD = '''
import enum
from pydantic import BaseModel

class ProviderType(str, enum.Enum):
    moonshot = "moonshot"

class ProviderCategory(str, enum.Enum):
    base = "base"
    byok = "byok"

class ErrorCode(enum.Enum):
    UNAUTHENTICATED = "UNAUTHENTICATED"

class LLMError(Exception): ...
class LLMAuthenticationError(LLMError): ...
class HandleNotFoundError(LLMError): ...
class MoonshotProvider: ...
class MoonshotClient: ...
class Server: ...
class LLMConfig: ...

class LLMClient:
    @staticmethod
    def create(provider_type): ...

class ModelSettings(BaseModel):
    moonshot_api_key: str | None = None
    moonshot_base_url: str = "https://api.moonshot.cn/v1"

model_settings = ModelSettings()

def a_function(): ...
'''

# every role declared, pointing at FAKE_BUILD (module fake_kimi_build)
FAKE_BINDING = {
    "provider_class": "fake_kimi_build:MoonshotProvider",
    "provider_type": "fake_kimi_build:ProviderType.moonshot",
    "provider_category_base": "fake_kimi_build:ProviderCategory.base",
    "provider_category_byok": "fake_kimi_build:ProviderCategory.byok",
    "settings": "fake_kimi_build:model_settings",
    "client_class": "fake_kimi_build:MoonshotClient",
    "client_factory": "fake_kimi_build:LLMClient.create",
    "server_class": "fake_kimi_build:Server",
    "llm_config_class": "fake_kimi_build:LLMConfig",
    "llm_error": "fake_kimi_build:LLMError",
    "auth_error": "fake_kimi_build:LLMAuthenticationError",
    "unauthenticated_code": "fake_kimi_build:ErrorCode.UNAUTHENTICATED",
    "handle_not_found_error": "fake_kimi_build:HandleNotFoundError",
    "provider_name": "moonshot",
    "settings_api_key": "moonshot_api_key",
    "settings_base_url": "moonshot_base_url",
    "api_key_env": "MOONSHOT_API_KEY",
    "base_url_env": "MOONSHOT_BASE_URL",
    "disable_env": "LETTA_DISABLE_MOONSHOT_PROVIDER",
    "default_base_url": "https://api.moonshot.ai/v1",
}


@pytest.fixture(scope="module")
def fake_build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fake-build")
    (folder / "fake_kimi_build.py").write_text(FAKE_BUILD)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        yield folder


def write_binding(folder, **roles) -> str:
    """A binding file with these roles (True/False/str values as TOML)."""
    lines = ["[binding]"] + [f"{role} = {str(v).lower() if isinstance(v, bool) else repr(v)}" for role, v in roles.items()]
    path = folder / "binding.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_default_binding_uses_the_contract_names():
    b = binding.load(None)
    assert b.locations["provider_class"][0] == "letta.schemas.providers:KimiProvider"
    assert b.provider_name == "kimi" and b.disable_env == "LETTA_DISABLE_KIMI_PROVIDER"


def test_every_role_has_words_for_its_absence():
    """Each role's absence is said in the field's words ("this build has no <description>")."""
    assert set(binding.ROLE_DESCRIPTIONS) == set(binding.LOCATIONS) | set(binding.VALUES)


def test_declared_locations_and_values_override_the_defaults(tmp_path):
    f = tmp_path / "b.toml"
    f.write_text('[binding]\nprovider_class = "json:JSONDecoder"\nprovider_name = "moonshot"\n')
    b = binding.load(f)
    assert b.provider_class.__name__ == "JSONDecoder"
    assert b.provider_name == "moonshot"
    assert b.declared == {"provider_class", "provider_name"}


@pytest.mark.parametrize(
    ("role", "words"),
    [
        ("settings_base_url", "base-URL setting"),
        ("base_url_env", "base-URL environment variable"),
        ("disable_env", "disabling flag"),
        ("client_class", "Kimi client class"),
    ],
)
def test_a_role_set_to_false_is_absent_with_one_line(tmp_path, role, words):
    """`role = false` declares the build has no such thing: asking says so, reading it raises
    RoleAbsent (a LookupError) with the line a behaviour that needs it fails with."""
    b = binding.load(write_binding(tmp_path, **{role: False}))
    line = f"this build has no {words} (binding: {role} = false)"
    assert b.absent(role) and b.absence(role) == line
    assert not b.absent("provider_class")
    with pytest.raises(binding.RoleAbsent) as raised:
        getattr(b, role)
    assert isinstance(raised.value, LookupError) and str(raised.value) == line
    assert b.describe()[role] == "false"
    assert not [p for p in b.problems(provider_found=False) if p.role == role]


def test_asking_about_an_unknown_role_is_a_kit_bug():
    """A suite asking absent() about a role that does not exist learns it at once (a typo is no verdict)."""
    with pytest.raises(KeyError, match="settings_base_uri"):
        binding.load(None).absent("settings_base_uri")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[binding\nprovider_class = 1", "not valid TOML"),
        ('[binding]\nprovider_klass = "a:b"\n', "unknown key 'provider_klass'"),
        ("[binding]\nprovider_class = 3\n", "must be a 'module:attribute' string or false"),
        ("[binding]\nsettings_base_url = true\n", "must be a non-empty string or false"),
        ('[binding]\napi_key_env = ""\n', "must be a non-empty string or false"),
        ('[binding]\nprovider_name = "moonshot"\n[extra]\nx = 1\n', "unknown key 'extra' outside [binding]"),
        ('provider_name = "moonshot"\n[binding]\nsettings_api_key = "k"\n', "unknown key 'provider_name' outside [binding]"),
    ],
)
def test_bad_binding_files_name_the_file_and_the_problem(tmp_path, text, says):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(binding.BindingConfigError) as raised:
        binding.load(f)
    assert str(f) in str(raised.value) and says in str(raised.value)


def test_a_declared_location_that_does_not_exist_is_named(tmp_path):
    f = tmp_path / "b.toml"
    f.write_text('[binding]\nclient_class = "no_such_module_xyz:KimiClient"\n')
    with pytest.raises(binding.BindingConfigError) as raised:
        binding.load(f).check_declared()
    assert "client_class" in str(raised.value) and "no_such_module_xyz" in str(raised.value)


def test_a_binding_of_the_right_kinds_has_no_problem(fake_build):
    """Every role resolves to its kind: classes, enum members, a settings object and its fields, a factory."""
    b = binding.load(write_binding(fake_build, **FAKE_BINDING))
    assert b.problems() == []


@pytest.mark.parametrize(
    ("role", "value", "says"),
    [
        ("provider_class", "os:system", "not a class"),
        ("client_class", "fake_kimi_build:a_function", "not a class"),
        ("provider_type", "fake_kimi_build:ProviderType", "not an enum member"),
        ("unauthenticated_code", "fake_kimi_build:LLMError", "not an enum member"),
        ("llm_error", "fake_kimi_build:MoonshotClient", "not an exception class"),
        ("auth_error", "builtins:KeyError", "not a subclass of llm_error"),
        ("client_factory", "fake_kimi_build:LLMClient", "not a callable factory"),
        ("settings", "fake_kimi_build:ModelSettings", "not a settings object"),
        ("settings_api_key", "no_such_field", "'no_such_field' is not a field of the settings model ModelSettings"),
        ("settings_base_url", "kimi_base_url", "'kimi_base_url' is not a field"),
        ("default_base_url", "api.moonshot.cn/v1", "not an http(s) URL"),
        ("server_class", "fake_kimi_build:nowhere", "does not resolve (fake_kimi_build has no attribute nowhere)"),
    ],
)
def test_a_role_of_the_wrong_kind_is_one_line_naming_it(fake_build, role, value, says):
    """The check before any test: exactly one problem, naming the file, the role and what is wrong."""
    b = binding.load(write_binding(fake_build, **{**FAKE_BINDING, role: value}))
    problems = b.problems()
    assert [p.role for p in problems] == [role], problems
    assert problems[0].line.startswith(f"binding ({b.source}): {role}: ") and says in problems[0].line
    assert "\n" not in problems[0].line


def test_settings_fields_of_an_absent_settings_object_must_be_absent_too(fake_build):
    b = binding.load(write_binding(fake_build, **{**FAKE_BINDING, "settings": False, "settings_base_url": False}))
    assert [(p.role, "settings = false" in p.line) for p in b.problems()] == [("settings_api_key", True)]


def test_default_names_the_build_lacks_ask_for_the_binding(fake_build):
    """The provider found, a role left at a default name the build does not have (a fork with
    ProviderType.moonshot and no binding for it): one line naming the role, suggesting `false`
    and `discover` — not a wall of errors; without a provider nothing is asked (exit 6 instead)."""
    declared = {role: v for role, v in FAKE_BINDING.items() if role not in ("provider_type", "settings_base_url")}
    b = binding.load(write_binding(fake_build, **declared))
    b.locations["provider_type"] = ("fake_kimi_build:ProviderType.kimi",)  # the kit's default name, in this build
    lines = {p.role: p.line for p in b.problems()}
    assert set(lines) == {"provider_type", "settings_base_url"}
    for role, line in lines.items():
        assert f"{role} = false" in line and binding.DISCOVER_HINT in line and "the Kimi provider was found" in line
    assert b.problems(provider_found=False) == []


def _error_lines(run) -> list[str]:
    return [line for line in run.output.splitlines() if line.startswith("ERROR:")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not = [valid", ["not valid TOML"]),
        ('[binding]\nprovider_class = "letta.schemas.providers.nowhere:KimiProvider"\n', ["provider_class"]),
        ('[binding]\nprovider_class = "os:system"\n', ["provider_class: os:system is the callable"]),
        ('[binding]\nsettings_api_key = "no_such_field"\nclient_factory = "letta.schemas.llm_config:LLMConfig"\n',
         ["client_factory: letta.schemas.llm_config:LLMConfig is the class", "settings_api_key: 'no_such_field' is not a field"]),
    ],
)
def test_the_kit_reports_a_bad_binding_as_one_usage_error_per_problem(run_kit, tmp_path, text, says):
    """A bad binding stops the run before any test: exit 4, one ERROR line per problem, no traceback
    (the issue's cases: a function as the provider class gave 16 IDs `fail`, an unknown settings
    field 37 ERROR tests)."""
    f = tmp_path / "binding.toml"
    f.write_text(text)
    run = run_kit("reference-0.11.7", "--binding", str(f))
    assert run.returncode == EXIT_USAGE, run.output[-2000:]
    errors = _error_lines(run)
    assert len(errors) == len(says) and all(s in e for s, e in zip(says, errors)), run.output[-2000:]
    assert "Traceback" not in run.output and " passed" not in run.output and " failed" not in run.output


def test_a_provider_declared_absent_is_the_no_kimi_verdict(run_kit, tmp_path):
    """`provider_class = false` is the single "no Kimi provider" verdict (exit 6), saying the binding declared it."""
    f = tmp_path / "binding.toml"
    f.write_text("[binding]\nprovider_class = false\n")
    run = run_kit("reference-0.11.7", "--binding", str(f))
    assert run.returncode == EXIT_NO_KIMI, run.output[-2000:]
    assert run.report["no_kimi_provider"] == "this build has no Kimi provider (binding: provider_class = false)"


def test_the_readme_binding_example_is_complete_toml():
    """The README's complete example loads as it stands (every role, `false` among them)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Declaring a binding", 1)[1].split("\n## ", 1)[0]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    table = tomllib.loads(textwrap.dedent(example))["binding"]
    assert set(table) == set(binding.ROLE_DESCRIPTIONS)
    assert False in table.values()

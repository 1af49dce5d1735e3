"""Binding configuration: loading, and one clear usage error for a bad one."""

from __future__ import annotations

import pytest

from kimi_conformance import binding
from kimi_conformance.exitcodes import EXIT_USAGE


def test_default_binding_uses_the_contract_names():
    b = binding.load(None)
    assert b.locations["provider_class"][0] == "letta.schemas.providers:KimiProvider"
    assert b.provider_name == "kimi" and b.disable_env == "LETTA_DISABLE_KIMI_PROVIDER"


def test_declared_locations_and_values_override_the_defaults(tmp_path):
    f = tmp_path / "b.toml"
    f.write_text('[binding]\nprovider_class = "json:JSONDecoder"\nprovider_name = "moonshot"\n')
    b = binding.load(f)
    assert b.provider_class.__name__ == "JSONDecoder"
    assert b.provider_name == "moonshot"
    assert b.declared == {"provider_class", "provider_name"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[binding\nprovider_class = 1", "not valid TOML"),
        ('[binding]\nprovider_klass = "a:b"\n', "unknown key 'provider_klass'"),
        ("[binding]\nprovider_class = 3\n", "must be a 'module:attribute' string"),
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


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not = [valid", "not valid TOML"),
        ('[binding]\nprovider_class = "letta.schemas.providers.nowhere:KimiProvider"\n', "provider_class"),
    ],
)
def test_the_kit_reports_a_bad_binding_as_one_usage_error(run_kit, tmp_path, text, says):
    f = tmp_path / "binding.toml"
    f.write_text(text)
    run = run_kit("reference-0.11.7", "--binding", str(f))
    assert run.returncode == EXIT_USAGE
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and says in errors[0], run.output[-2000:]
    assert "Traceback" not in run.output

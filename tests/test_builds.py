"""The build recipe: known targets, a no-op remake, and loud failures for a recipe that does not apply."""

from __future__ import annotations

import time

import pytest

from kimi_conformance import builds


def test_the_standard_targets_exist():
    names = set(builds.all_builds())
    assert {"upstream-0.11.7", "upstream-0.16.8", "reference-0.11.7", "reference-0.16.8"} <= names


def test_every_defect_declares_the_ids_it_turns_red():
    from kimi_conformance.contract import BEHAVIORS

    defects = [b for b in builds.all_builds().values() if b.kind == "defect"]
    assert defects
    for b in defects:
        assert b.expect and set(b.expect) <= set(BEHAVIORS), b.name


def test_making_an_existing_build_is_a_no_op():
    build = builds.ensure_build("reference-0.11.7")
    marker = build.overlay_dir / ".kit-overlay.json"
    before = marker.stat().st_mtime_ns
    started = time.monotonic()
    builds.ensure_build("reference-0.11.7")
    assert marker.stat().st_mtime_ns == before
    assert time.monotonic() - started < 30  # generous: it only hashes the recipe


def test_an_edit_whose_anchor_is_missing_fails_naming_the_file(tmp_path):
    (tmp_path / "x.py").write_text("a = 1\n")
    spec_file = tmp_path / "v.toml"
    with pytest.raises(builds.BuildError) as raised:
        builds._apply_variant(tmp_path, spec_file, {"edit": [{"file": "x.py", "old": "b = 2", "new": "b = 3"}]}, "0.11.7")
    assert str(spec_file) in str(raised.value) and "occurs 0 times" in str(raised.value)


def test_an_unknown_build_is_named():
    with pytest.raises(builds.BuildError) as raised:
        builds.get_build("reference-9.9.9")
    assert "reference-9.9.9" in str(raised.value)


def test_a_variant_can_add_a_whole_file_but_not_overwrite_one_silently(tmp_path):
    (tmp_path / "x.py").write_text("a = 1\n")
    spec_file = tmp_path / "v.toml"
    builds._apply_variant(tmp_path, spec_file, {"file": [{"path": "pkg/new.py", "text": "b = 2\n"}]}, "0.11.7")
    assert (tmp_path / "pkg" / "new.py").read_text() == "b = 2\n"
    with pytest.raises(builds.BuildError) as raised:
        builds._apply_variant(tmp_path, spec_file, {"file": [{"path": "x.py", "text": "a = 2\n"}]}, "0.11.7")
    assert "x.py" in str(raised.value) and "replace = true" in str(raised.value)
    builds._apply_variant(tmp_path, spec_file, {"file": [{"path": "x.py", "text": "a = 2\n", "replace": True}]}, "0.11.7")
    assert (tmp_path / "x.py").read_text() == "a = 2\n"


def test_a_defect_on_a_variant_inherits_its_binding_and_versions(tmp_path, monkeypatch):
    variants = tmp_path / "variants"
    variants.mkdir()
    (variants / "renamed.toml").write_text('binding = "[binding]"\nversions = ["0.16.8"]\n')
    monkeypatch.setitem(builds.VARIANT_DIRS, "variant", variants)
    spec = builds._with_base(tmp_path / "d.toml", {"base": "renamed", "expect": ["LIST-PREFIX"]})
    assert (spec["binding"], spec["versions"], spec["_base_file"]) == ("[binding]", ["0.16.8"], variants / "renamed.toml")
    with pytest.raises(builds.BuildError) as raised:
        builds._with_base(tmp_path / "d.toml", {"base": "no-such-variant"})
    assert "no-such-variant" in str(raised.value)

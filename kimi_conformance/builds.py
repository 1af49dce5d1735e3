"""Build targets: pinned Letta environments and the variants that overlay them.

Standard library only: this module runs before any dependency is installed.

A *build* is one Letta environment (one virtualenv per Letta version, made with
uv and a date cut-off so it installs and imports today) plus an optional
``letta/`` overlay tree placed first on ``PYTHONPATH``. ``upstream-<v>`` has no
overlay; ``reference-<v>`` overlays a copy of the installed tree with the kit's
reference Kimi implementation; variants and defects (``fixtures/variants``,
``fixtures/defects``) are small edits on top of the reference overlay, so a new
variant costs a folder copy, not an install. Everything lives under ``.builds/``
(ignored); making a build that exists and is up to date is a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = KIT_ROOT / "fixtures"
RECIPE_FILE = FIXTURES / "builds" / "builds.toml"
REFERENCE_DIR = FIXTURES / "builds" / "reference"
VARIANT_DIRS = {"variant": FIXTURES / "variants", "defect": FIXTURES / "defects"}
DEFAULT_BUILD = "reference-0.11.7"
BINDING_FILE_NAME = "kimi-binding.toml"


class BuildError(RuntimeError):
    """A build could not be made; the message says which and why."""


def build_root() -> Path:
    return Path(os.environ.get("KIMI_KIT_BUILDS", KIT_ROOT / ".builds")).resolve()


def log(message: str) -> None:
    print(f"[kimi-kit build] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# recipe


def load_recipe() -> dict:
    with RECIPE_FILE.open("rb") as f:
        return tomllib.load(f)


def letta_versions() -> list[str]:
    return list(load_recipe()["letta"])


@dataclass(frozen=True)
class Build:
    name: str
    version: str
    kind: str  # "upstream" | "reference" | "variant" | "defect"
    spec_file: Path | None = None
    spec: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def has_overlay(self) -> bool:
        return self.kind != "upstream"

    @property
    def expect(self) -> list[str]:
        """Behaviour IDs a defect must turn red (empty for the others)."""
        return list(self.spec.get("expect", []))

    @property
    def overlay_dir(self) -> Path:
        return build_root() / "overlays" / self.name

    @property
    def env_dir(self) -> Path:
        return env_dir(self.version)

    @property
    def python(self) -> Path:
        return self.env_dir / "bin" / "python"

    @property
    def binding_file(self) -> Path | None:
        if self.spec.get("binding"):
            return self.overlay_dir / BINDING_FILE_NAME
        return None

    def pythonpath(self) -> list[str]:
        return [str(self.overlay_dir)] if self.has_overlay else []


def _variant_specs() -> list[tuple[str, Path, dict]]:
    specs = []
    for kind, folder in VARIANT_DIRS.items():
        for path in sorted(folder.glob("*.toml")):
            with path.open("rb") as f:
                try:
                    spec = tomllib.load(f)
                except tomllib.TOMLDecodeError as e:
                    raise BuildError(f"{path}: not valid TOML: {e}") from e
            specs.append((kind, path, _with_base(path, spec)))
    return specs


def _with_base(path: Path, spec: dict) -> dict:
    """A spec with ``base = "<variant>"`` is made on top of that variant of fixtures/variants/
    (applied first); it inherits the variant's binding and versions unless it declares its own."""
    if "base" not in spec:
        return spec
    base_file = VARIANT_DIRS["variant"] / f"{spec['base']}.toml"
    try:
        with base_file.open("rb") as f:
            base = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BuildError(f"{path}: base {spec['base']!r}: cannot read {base_file} ({e})") from e
    if "base" in base:
        raise BuildError(f"{path}: base {spec['base']!r} has a base of its own (one level only)")
    merged = {"_base_file": base_file, "_base_spec": base, **spec}
    for key in ("binding", "versions"):
        if key not in spec and key in base:
            merged[key] = base[key]
    return merged


def all_builds() -> dict[str, Build]:
    builds: dict[str, Build] = {}
    versions = letta_versions()
    for version in versions:
        builds[f"upstream-{version}"] = Build(f"upstream-{version}", version, "upstream")
        builds[f"reference-{version}"] = Build(f"reference-{version}", version, "reference")
    for kind, path, spec in _variant_specs():
        for version in spec.get("versions", versions):
            name = f"{path.stem}-{version}"
            builds[name] = Build(name, version, kind, path, spec)
    return builds


def get_build(name: str) -> Build:
    builds = all_builds()
    if name not in builds:
        raise BuildError(f"unknown build {name!r}; known builds: {', '.join(sorted(builds))}")
    return builds[name]


# --------------------------------------------------------------------------------------
# environments


def env_dir(version: str) -> Path:
    return build_root() / "envs" / f"letta-{version}"


@contextlib.contextmanager
def _locked(name: str):
    root = build_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".lock-{name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            if part.is_dir():
                for p in sorted(part.rglob("*")):
                    if p.is_file() and "__pycache__" not in p.parts:
                        h.update(str(p.relative_to(part)).encode())
                        h.update(p.read_bytes())
            elif part.exists():
                h.update(part.read_bytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _read_marker(path: Path, key: str = "digest") -> str | None:
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError):
        return None


def _write_marker(path: Path, digest: str, **extra) -> None:
    path.write_text(json.dumps({"digest": digest, **extra}, indent=2))


def _run(cmd: list[str], **kw) -> None:
    shown = " ".join(str(c) for c in cmd)
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise BuildError(f"command failed ({result.returncode}): {shown}\n{tail}")


def uv_executable() -> str:
    """uv from PATH, else a private copy installed with pip into .builds/tools."""
    found = shutil.which("uv")
    if found:
        return found
    tools = build_root() / "tools"
    uv = tools / "bin" / "uv"
    with _locked("tools"):
        if not uv.exists():
            log("installing uv into .builds/tools (pip)")
            _run([sys.executable, "-m", "venv", tools])
            _run([tools / "bin" / "python", "-m", "pip", "install", "--quiet", "uv"])
    return str(uv)


def ensure_env(version: str) -> Path:
    """Create (once) the virtualenv for a Letta version; return its directory."""
    recipe = load_recipe()
    if version not in recipe["letta"]:
        raise BuildError(f"no recipe for Letta {version}; known: {', '.join(recipe['letta'])}")
    spec = recipe["letta"][version]
    kit_reqs = recipe["kit"]["requirements"]
    target = env_dir(version)
    marker = target / ".kit-env.json"
    letta_digest = _digest(spec, sys.version_info[:2])
    digest = _digest(spec, kit_reqs, sys.version_info[:2])
    if _read_marker(marker) == digest:
        return target
    with _locked(f"env-{version}"):
        if _read_marker(marker) == digest:
            return target
        uv = uv_executable()
        if _read_marker(marker, "letta_digest") == letta_digest:
            # Same Letta, other kit requirements: add them in place (the environment
            # may be in use by a running kit; it is never torn down for this).
            log(f"updating the kit's requirements in the environment for Letta {version}")
            env = {**os.environ, "VIRTUAL_ENV": str(target)}
            env.pop("PYTHONPATH", None)
            python = target / "bin" / "python"
            _run([uv, "pip", "install", "--quiet", "--python", python, "-c", target / "letta-constraints.txt", *kit_reqs], env=env)
            _write_marker(marker, digest, letta_digest=letta_digest, requirement=spec["requirement"], exclude_newer=spec["exclude_newer"])
            return target
        log(f"creating environment for Letta {version} in {target} (uv, resolution cut off at {spec['exclude_newer']})")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "VIRTUAL_ENV": str(target)}
        env.pop("PYTHONPATH", None)
        _run([uv, "venv", "--quiet", "--python", sys.executable, target], env=env)
        python = target / "bin" / "python"
        _run([uv, "pip", "install", "--quiet", "--python", python, "--exclude-newer", spec["exclude_newer"], spec["requirement"]], env=env)
        constraints = target / "letta-constraints.txt"
        frozen = subprocess.run([uv, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, env=env, check=True)
        constraints.write_text(frozen.stdout)
        _run([uv, "pip", "install", "--quiet", "--python", python, "-c", constraints, *kit_reqs], env=env)
        log(f"compiling bytecode for Letta {version}")
        _run([python, "-m", "compileall", "-q", "-j", "0", _site_packages(python)], env=env)
        _run([python, "-c", "import letta.server.server"], env={**env, "HOME": str(target)})
        _write_marker(marker, digest, letta_digest=letta_digest, requirement=spec["requirement"], exclude_newer=spec["exclude_newer"])
    return target


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def installed_letta_dir(version: str) -> Path:
    return _site_packages(env_dir(version) / "bin" / "python") / "letta"


# --------------------------------------------------------------------------------------
# overlays


def _load_reference_recipe():
    spec = importlib.util.spec_from_file_location("kimi_kit_reference_recipe", REFERENCE_DIR / "recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _apply_variant(letta: Path, spec_file: Path, spec: dict, version: str) -> None:
    """Apply a variant's moves, whole files, subs and edits, in that order (format: fixtures/defects/README.md).

    An edit or a sub may carry ``versions = [...]``: it applies only to those Letta versions
    (server code differs between releases; one defect, one file, both versions).
    """
    for move in spec.get("move", []):
        src, dst = letta / move["from"], letta / move["to"]
        if not src.exists():
            raise BuildError(f"{spec_file}: move: {move['from']} does not exist in the tree")
        src.rename(dst)
    for new_file in spec.get("file", []):
        path = letta / new_file["path"]
        if path.exists() and not new_file.get("replace", False):
            raise BuildError(f"{spec_file}: file: {new_file['path']} already exists in the tree (say replace = true to overwrite it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_file["text"])
    for sub in spec.get("sub", []):
        if version not in sub.get("versions", [version]):
            continue
        hits = 0
        for py in letta.rglob("*.py"):
            text = py.read_text()
            if sub["old"] in text:
                hits += text.count(sub["old"])
                py.write_text(text.replace(sub["old"], sub["new"]))
        if not hits:
            raise BuildError(f"{spec_file}: sub: {sub['old']!r} occurs nowhere in the tree")
    for edit in spec.get("edit", []):
        if version not in edit.get("versions", [version]):
            continue
        path = letta / edit["file"]
        if not path.exists():
            raise BuildError(f"{spec_file}: edit: {edit['file']} does not exist in the tree")
        text = path.read_text()
        count = text.count(edit["old"])
        if count != edit.get("count", 1):
            raise BuildError(f"{spec_file}: edit of {edit['file']}: {edit['old']!r} occurs {count} times (expected {edit.get('count', 1)})")
        path.write_text(text.replace(edit["old"], edit["new"]))


def ensure_build(build: Build | str) -> Build:
    """Make the build's environment and overlay if missing or out of date."""
    if isinstance(build, str):
        build = get_build(build)
    ensure_env(build.version)
    if not build.has_overlay:
        return build
    sources: list[object] = [build.version, REFERENCE_DIR, build.kind]
    if build.spec_file:
        sources.append(build.spec_file)
    if build.spec.get("_base_file"):
        sources.append(build.spec["_base_file"])
    digest = _digest(*sources)
    marker = build.overlay_dir / ".kit-overlay.json"
    if _read_marker(marker) == digest:
        return build
    with _locked(f"overlay-{build.name}"):
        if _read_marker(marker) == digest:
            return build
        log(f"making overlay {build.name}")
        # Made beside its place and swapped in, so that a kit running on the old tree
        # never sees a half-made one.
        fresh = build.overlay_dir.with_name(f".{build.name}.{os.getpid()}.new")
        shutil.rmtree(fresh, ignore_errors=True)
        letta = fresh / "letta"
        shutil.copytree(installed_letta_dir(build.version), letta)
        try:
            _load_reference_recipe().apply(letta, build.version)
            if build.spec.get("_base_file"):
                _apply_variant(letta, build.spec["_base_file"], build.spec["_base_spec"], build.version)
            if build.spec_file:
                _apply_variant(letta, build.spec_file, build.spec, build.version)
            if build.spec.get("binding"):
                (fresh / BINDING_FILE_NAME).write_text(build.spec["binding"])
            _run([build.python, "-m", "compileall", "-q", "-j", "0", letta])
        except Exception as e:
            shutil.rmtree(fresh, ignore_errors=True)
            raise BuildError(f"could not make {build.name}: {e}") from e
        _write_marker(fresh / marker.name, digest, build=build.name, kind=build.kind)
        _swap_in(fresh, build.overlay_dir)
    return build


def _swap_in(fresh: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="kimi_conformance build", description="Make build targets under .builds/.")
    parser.add_argument("names", nargs="*", help="builds to make (default: the reference build); 'all' for every build")
    parser.add_argument("--list", action="store_true", help="list the known builds and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, b in sorted(all_builds().items()):
            state = "made" if (b.overlay_dir / ".kit-overlay.json").exists() or (not b.has_overlay and (b.env_dir / ".kit-env.json").exists()) else "not made"
            print(f"{name:40} {b.kind:9} {state}")
        return 0
    names = args.names or [DEFAULT_BUILD]
    if names == ["all"]:
        names = sorted(all_builds())
    try:
        for name in names:
            b = ensure_build(name)
            print(f"{b.name}: python={b.python} overlay={b.overlay_dir if b.has_overlay else '-'}")
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0

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
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kimi_conformance.exitcodes import EXIT_USAGE

INSTALLED_KIT = "kimi_conformance_kit"  # the package `pip install <kit>` carries the checkout layout in (setup.py)


def _kit_root() -> Path:
    """The kit's tree (suites/, cassettes/, fixtures/, conftest.py): the checkout this module lies
    in, else the copy an installed kit carries as the package kimi_conformance_kit (site-packages)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "fixtures" / "builds" / "builds.toml").is_file():
        return here
    try:
        spec = importlib.util.find_spec(INSTALLED_KIT)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:  # a namespace package (no __init__.py)
        installed = Path(location).resolve()
        if (installed / "fixtures" / "builds" / "builds.toml").is_file():
            return installed
    return here


KIT_ROOT = _kit_root()
FIXTURES = KIT_ROOT / "fixtures"
RECIPE_FILE = FIXTURES / "builds" / "builds.toml"
REFERENCE_DIR = FIXTURES / "builds" / "reference"
VARIANT_DIRS = {"variant": FIXTURES / "variants", "defect": FIXTURES / "defects"}
DEFAULT_BUILD = "reference-0.11.7"
BINDING_FILE_NAME = "kimi-binding.toml"


class BuildError(RuntimeError):
    """A build could not be made; the message says which and why."""


def build_root() -> Path:
    return Path(os.environ.get("KIMI_KIT_BUILDS") or KIT_ROOT / ".builds").resolve()


def check_build_root() -> Path:
    """The folder builds go to, made if missing; a BuildError naming KIMI_KIT_BUILDS if unusable."""
    root = build_root()
    named = "KIMI_KIT_BUILDS" if os.environ.get("KIMI_KIT_BUILDS") else "the kit's .builds folder"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot make builds in {root} ({named}): {e.strerror or e}") from None
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        raise BuildError(f"cannot make builds in {root} ({named}): not a writable folder")
    return root


def log(message: str) -> None:
    print(f"[kimi-kit build] {message}", file=sys.stderr, flush=True)


class Steps:
    """Progress of a build: ``[k/N] step ...`` when a step starts and its elapsed time when it ends.

    Plain lines (they read the same in a CI log and a captured pipe); on a terminal, where the
    launcher's Python has `rich`, a live spinner with the elapsed time instead of the start line."""

    def __init__(self, title: str, total: int):
        self.title, self.total, self.done = title, total, 0
        self.start = time.monotonic()

    @contextlib.contextmanager
    def step(self, name: str):
        self.done += 1
        label = f"{self.title}: [{self.done}/{self.total}] {name}"
        began = time.monotonic()
        with _live_status(label):
            yield
        log(f"{label} done ({time.monotonic() - began:.1f} s; {time.monotonic() - self.start:.1f} s in all)")


@contextlib.contextmanager
def _live_status(label: str):
    """rich's live status (spinner and elapsed time) on a TTY where rich is installed; a start line otherwise."""
    if sys.stderr.isatty() and importlib.util.find_spec("rich") is not None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("[kimi-kit build] {task.description}"), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as progress:
            progress.add_task(label, total=None)
            yield
        return
    log(f"{label} ...")
    yield


# --------------------------------------------------------------------------------------
# recipe


def load_recipe() -> dict:
    with RECIPE_FILE.open("rb") as f:
        return tomllib.load(f)


def letta_versions() -> list[str]:
    return list(load_recipe()["letta"])


def catalogue_lines(spec: dict | None = None) -> tuple[list[str], str]:
    """The Letta lines a defect or variant runs on, and why: its own ``versions`` if it
    says so, else builds.toml's ``[catalogue] lines`` (a representative subset), else every line."""
    if spec and "versions" in spec:
        return list(spec["versions"]), "its own `versions`"
    catalogue = load_recipe().get("catalogue", {})
    if "lines" not in catalogue:
        return letta_versions(), "every line"
    return list(catalogue["lines"]), "catalogue lines"


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
        for version in catalogue_lines(spec)[0]:
            name = f"{path.stem}-{version}"
            builds[name] = Build(name, version, kind, path, spec)
    return builds


def get_build(name: str) -> Build:
    """The build called ``name``; ``BuildError`` (naming the known ones) if there is none.
    ``upstream-<v>`` and ``reference-<v>`` are made from builds.toml alone, without reading
    the ~80 variant and defect files (every run of the reference build asks for one)."""
    kind, _, version = name.partition("-")
    if kind in ("upstream", "reference") and version in letta_versions():
        return Build(name, version, kind)
    builds = all_builds()
    if name not in builds:
        known = [n for n in sorted(builds) if builds[n].kind in ("reference", "upstream")]
        raise BuildError(f"unknown build {name!r} (known: {', '.join(known)} and {len(builds) - len(known)} variants and defects; "
                         "`build --list` lists them all)")
    return builds[name]


# --------------------------------------------------------------------------------------
# environments


def env_dir(version: str) -> Path:
    return build_root() / "envs" / f"letta-{version}"


@contextlib.contextmanager
def _locked(name: str):
    root = check_build_root()
    with open(root / f".lock-{name}", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another kit process that is making {name} (lock {root / f'.lock-{name}'}) ...")
            began = time.monotonic()
            fcntl.flock(lock, fcntl.LOCK_EX)
            log(f"the other kit process finished {name} ({time.monotonic() - began:.0f} s waited)")
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


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _run(cmd: list[str], **kw) -> None:
    """Run a build tool in a process group of its own, which is ended (with every worker it
    started: uv's resolver, compileall's pool) when the launcher gets any signal or fails."""
    shown = " ".join(str(c) for c in cmd)
    started: list[subprocess.Popen] = []
    pending: list[int] = []

    def end_group(signum, frame):
        pending.append(signum)
        if started:  # else the tool is being started: ended as soon as Popen returns (below)
            die()

    def die():
        for proc in started:
            _kill_group(proc)
        signal.signal(pending[0], previous[pending[0]])
        os.kill(os.getpid(), pending[0])  # then die of the signal as we would have

    # the handlers are in place before the tool starts: a signal at any moment ends its group
    previous = {sig: signal.getsignal(sig) for sig in _FORWARDED}
    in_main = _is_main_thread()
    if in_main:
        for sig in _FORWARDED:
            signal.signal(sig, end_group)
    try:
        started.append(subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True, **kw))
        proc = started[0]
        if pending:
            die()
        output, _ = proc.communicate()
    except BaseException:
        for proc in started:
            _kill_group(proc)
        raise
    finally:
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if proc.returncode != 0:
        tail = "\n".join((output or "").strip().splitlines()[-25:])
        raise BuildError(f"command failed ({proc.returncode}): {shown}\n{tail}")


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def _remove_tree(path: Path) -> None:
    """Remove a build's tree; a failure is a BuildError naming it (never a traceback)."""
    if not path.exists() and not path.is_symlink():
        return
    try:
        shutil.rmtree(path)
    except OSError as e:
        raise BuildError(f"cannot remove {path} to remake it: {e.strerror or e}; remove it by hand") from None


def sweep_stale(folder: Path) -> None:
    """Remove `.NAME.PID.new/.old` trees that interrupted launchers left (their process is gone)."""
    if not folder.is_dir():
        return
    for stale in folder.glob(".*.*.*"):
        name, _, rest = stale.name[1:].rpartition(".")
        pid = name.rpartition(".")[2]
        if rest not in ("new", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            _write_marker(marker, digest, letta_digest=letta_digest, requirement=requirements(spec), exclude_newer=spec["exclude_newer"])
            return target
        log(f"creating environment for Letta {version} in {target} (uv, resolution cut off at {spec['exclude_newer']})")
        steps = Steps(f"Letta {version}", total=5)
        _remove_tree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "VIRTUAL_ENV": str(target)}
        env.pop("PYTHONPATH", None)
        python = target / "bin" / "python"
        with steps.step("creating the virtualenv"):
            _run([uv, "venv", "--quiet", "--python", base_python(version, spec), target], env=env)
        with steps.step(f"installing {' '.join(requirements(spec))}"):
            _run([uv, "pip", "install", "--quiet", "--python", python, "--exclude-newer", spec["exclude_newer"], *requirements(spec)], env=env)
        constraints = target / "letta-constraints.txt"
        frozen = subprocess.run([uv, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, env=env, check=True)
        constraints.write_text(frozen.stdout)
        with steps.step("installing the kit's requirements"):
            _run([uv, "pip", "install", "--quiet", "--python", python, "-c", constraints, *kit_reqs], env=env)
        with steps.step("compiling bytecode"):
            _run([python, "-m", "compileall", "-q", "-j", "0", _site_packages(python)], env=env)
        with steps.step("importing Letta's server once"):
            import_check(version, python, env={**env, "HOME": str(target)})
        _write_marker(marker, digest, letta_digest=letta_digest, requirement=requirements(spec), exclude_newer=spec["exclude_newer"])
    return target


def requirements(spec: dict) -> list[str]:
    """A version's requirements: ``requirement`` is one string or a list of them."""
    req = spec["requirement"]
    return [req] if isinstance(req, str) else list(req)


SQLITE_EXTENSIONS_CHECK = "import sqlite3; sqlite3.connect(':memory:').enable_load_extension(True)"


def base_python(version: str, spec: dict) -> str:
    """The interpreter a version's environment is made from: the kit's own, unless the
    line says ``sqlite_extensions`` (0.9/0.10 load the sqlite-vec extension into every
    SQLite connection) and the kit's Python was built without loadable SQLite
    extensions; then another Python of the same minor version that has them."""
    if not spec.get("sqlite_extensions"):
        return sys.executable
    minor = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [sys.executable, shutil.which(minor), f"/usr/bin/{minor}", f"/usr/local/bin/{minor}"]
    for candidate in dict.fromkeys(c for c in candidates if c and Path(c).exists()):
        if subprocess.run([candidate, "-c", SQLITE_EXTENSIONS_CHECK], capture_output=True).returncode == 0:
            return candidate
    raise BuildError(f"Letta {version} loads the sqlite-vec extension: it needs a {minor} whose sqlite3 can load extensions; none among {', '.join(c for c in candidates if c)}")


IMPORT_CHECK = "from letta.server.server import SyncServer"


def import_check(version: str, python: Path, env: dict) -> None:
    """The environment imports Letta's server; else a one-line BuildError naming the failure."""
    result = subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).strip().splitlines()
        last = lines[-1] if lines else f"exit {result.returncode}"
        raise BuildError(f"Letta {version} installed but does not import ({IMPORT_CHECK!r}): {last}")


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
    edits = spec.get("edit", [])
    if edits and not spec.get("move") and not spec.get("sub") and all(version not in e.get("versions", [version]) for e in edits):
        raise BuildError(f"{spec_file}: no edit applies to Letta {version} (each says other `versions`): it would be the reference build")
    for edit in edits:
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
    """Make the build's environment and overlay if missing or out of date.

    Any failure (including the file system's) is a BuildError naming what failed."""
    try:
        return _ensure_build(build)
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        raise BuildError(f"cannot make {getattr(build, 'name', build)} under {build_root()}: {e.strerror or e}{where}") from None
    except tomllib.TOMLDecodeError as e:
        raise BuildError(f"the kit's build recipes cannot be read: {e}") from None


def _ensure_build(build: Build | str) -> Build:
    if isinstance(build, str):
        build = get_build(build)
    check_build_root()
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
        steps = Steps(build.name, total=3)
        sweep_stale(build.overlay_dir.parent)
        # Made beside its place and swapped in, so that a kit running on the old tree
        # never sees a half-made one.
        fresh = build.overlay_dir.with_name(f".{build.name}.{os.getpid()}.new")
        shutil.rmtree(fresh, ignore_errors=True)
        letta = fresh / "letta"
        try:
            with steps.step("copying the installed letta/ tree"):
                shutil.copytree(installed_letta_dir(build.version), letta)
            with steps.step("applying the reference Kimi provider" + (f" and {build.spec_file.name}" if build.spec_file else "")):
                _load_reference_recipe().apply(letta, build.version)
                if build.spec.get("_base_file"):
                    _apply_variant(letta, build.spec["_base_file"], build.spec["_base_spec"], build.version)
                if build.spec_file:
                    _apply_variant(letta, build.spec_file, build.spec, build.version)
                if build.spec.get("binding"):
                    (fresh / BINDING_FILE_NAME).write_text(build.spec["binding"])
            with steps.step("compiling bytecode"):
                _run([build.python, "-m", "compileall", "-q", "-j", "0", letta])
        except BaseException as e:
            shutil.rmtree(fresh, ignore_errors=True)
            if isinstance(e, Exception) and not isinstance(e, BuildError):
                raise BuildError(f"could not make {build.name}: {e}") from e
            raise
        _write_marker(fresh / marker.name, digest, build=build.name, kind=build.kind)
        _swap_in(fresh, build.overlay_dir)
    return build


def _swap_in(fresh: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    try:
        if target.exists():
            os.replace(target, old)
        os.replace(fresh, target)
    except OSError as e:
        raise BuildError(f"cannot put the new {target.name} in place at {target}: {e.strerror or e}") from None
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str]) -> int:
    import argparse

    from kimi_conformance.cli import KitArgumentParser

    parser = KitArgumentParser(prog="kimi_conformance build", description="Make build targets under .builds/.")
    parser.add_argument("names", nargs="*", help="builds to make (default: the reference build); 'all' for every build")
    parser.add_argument("--list", action="store_true", help="list the known builds and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, b in sorted(all_builds().items()):
            state = "made" if (b.overlay_dir / ".kit-overlay.json").exists() or (not b.has_overlay and (b.env_dir / ".kit-env.json").exists()) else "not made"
            print(f"{name:40} {b.kind:9} {state}")
        catalogue = load_recipe().get("catalogue", {})
        print(f"\ndefects and variants run on the catalogue lines {', '.join(catalogue_lines()[0])} unless their file says `versions`"
              f" ({catalogue.get('why', 'builds.toml has no [catalogue]')}):")
        for _, path, spec in _variant_specs():
            lines, why = catalogue_lines(spec)
            print(f"  {path.stem:38} {', '.join(lines)} ({why})")
        return 0
    names = args.names or [DEFAULT_BUILD]
    if names == ["all"]:
        names = sorted(all_builds())
    try:
        for name in names:
            b = ensure_build(name)
            print(f"{b.name}: python={b.python} overlay={b.overlay_dir if b.has_overlay else '-'}")
    except BuildError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return EXIT_USAGE
    return 0

"""The fork server's warm-up: done once in the parent, the lazy work each forked child would repeat.

``warm_all()`` is called by ``forkserver.preload`` after the imports of ``PRELOAD``. What it does
(measured by profiling a child of reference-0.11.7 and reference-0.16.8, and comparing
``sys.modules`` before and after a run):

* imports the kit's modules a run imports lazily (``KIT_MODULES``: the report, live and REST
  plugins, the cassette helpers); they import no ``letta`` module at import;
* builds the pydantic schemas the OpenAI SDK defers (``openai.types``, ``openai.types.chat``:
  ``defer_build``), which each child otherwise builds on its first parse;
* fills ``inspect``'s module-by-file cache (Letta 0.11.7's database session calls
  ``inspect.stack()``, whose first call walks every loaded module's file);
* reads the installed distributions' entry points once (pytest's plugin autoload in each child).

Third-party and kit code only: never a module of the ``letta`` package, which a build's overlay
may change (``warm_all`` returns the ``letta`` modules it found newly imported, which must be none).
"""

from __future__ import annotations

import importlib
import inspect
import sys

KIT_MODULES = (
    "kimi_conformance.allure_results",
    "kimi_conformance.cassette_needs",
    "kimi_conformance.drift",
    "kimi_conformance.kit_settings",
    "kimi_conformance.letta_process",
    "kimi_conformance.live",
    "kimi_conformance.live_transport",
    "kimi_conformance.record",
    "kimi_conformance.rest_plugin",
    "kimi_conformance.standin",
    "kimi_conformance.upstream",
)
OPENAI_MODEL_MODULES = ("openai.types", "openai.types.chat")


def _letta_modules() -> set[str]:
    from kimi_conformance.forkserver import LETTA_PACKAGES, in_packages

    return {name for name in sys.modules if in_packages(name, LETTA_PACKAGES)}


def import_kit_modules(names: tuple[str, ...] = KIT_MODULES) -> None:
    for name in names:
        importlib.import_module(name)


def build_openai_schemas(modules: tuple[str, ...] = OPENAI_MODEL_MODULES) -> int:
    """Complete the deferred pydantic models of the OpenAI SDK's type modules; how many were built (0 without the SDK)."""
    try:
        import pydantic
    except ImportError:
        return 0
    built = 0
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, type) and issubclass(obj, pydantic.BaseModel) and not getattr(obj, "__pydantic_complete__", True):
                try:
                    obj.model_rebuild()
                    built += 1
                except Exception:  # noqa: BLE001 - not buildable yet: the child builds it as it would have
                    pass
    return built


def fill_inspect_cache() -> None:
    """``inspect.getmodule`` of an object that names no module walks ``sys.modules`` once and caches each file."""
    inspect.getmodule(fill_inspect_cache.__code__)


def read_entry_points() -> None:
    """The distributions' entry points (``importlib.metadata`` and its backport, which pluggy may use)."""
    import importlib.metadata

    importlib.metadata.entry_points()
    try:
        import importlib_metadata
    except ImportError:
        return
    importlib_metadata.entry_points(group="pytest11")


def warm_all() -> list[str]:
    """Do all of the above; the ``letta`` modules that it imported (must be none: a build's overlay may change them)."""
    before = _letta_modules()
    import_kit_modules()
    build_openai_schemas()
    read_entry_points()
    fill_inspect_cache()  # last: it caches the files of everything imported above
    return sorted(_letta_modules() - before)

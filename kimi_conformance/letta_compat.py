"""What differs between Letta layouts, in one place.

The suites talk to the build only through the binding and these helpers:
constructing a provider (plain ``api_key`` up to 0.13-ish, ``api_key_enc`` from
0.14), reading its key back, giving 0.16's Postgres-only database layer a
per-process SQLite file (and each started server a fresh copy of it), and starting
a server the way ``letta server`` does (its ``init_async`` where it has one).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _has_encrypted_keys(provider_cls) -> bool:
    return "api_key_enc" in getattr(provider_cls, "model_fields", {})


def make_provider(binding, *, name: str, api_key: str | None, base_url: str | None, category=None):
    """A provider instance of the build's Kimi provider class."""
    cls = binding.provider_class
    kwargs: dict[str, Any] = {
        "name": name,
        "provider_type": binding.provider_type,
        "provider_category": category if category is not None else binding.provider_category_base,
    }
    if base_url is not None:
        kwargs["base_url"] = base_url
    if api_key is not None:
        if _has_encrypted_keys(cls):
            from letta.schemas.secret import Secret

            kwargs["api_key_enc"] = Secret.from_plaintext(api_key)
        else:
            kwargs["api_key"] = api_key
    return cls(**kwargs)


def provider_create(request_cls, **fields):
    """A ``ProviderCreate`` request with the fields this build's class has, and the names
    of the fields it lacks (before 0.11 a user's provider has no ``base_url``)."""
    known = getattr(request_cls, "model_fields", {})
    kept = {name: value for name, value in fields.items() if name in known}
    return request_cls(**kept), sorted(set(fields) - set(kept))


def default_base_url(provider_class) -> str | None:
    """The base URL a provider of this class has when none is given (None if it has no default)."""
    field = getattr(provider_class, "model_fields", {}).get("base_url")
    default = getattr(field, "default", None)
    return default if isinstance(default, str) else None


def unknown_provider_errors() -> tuple[type[BaseException], ...]:
    """What an unknown provider name may raise: ``ValueError``, and from 0.12 the
    server's own ``LettaInvalidArgumentError`` (CONTRACT.md, RESOLVE-UNKNOWN-PROVIDER)."""
    try:
        from letta.errors import LettaInvalidArgumentError
    except ImportError:
        return (ValueError,)
    return (ValueError, LettaInvalidArgumentError)


def openai_settings():
    """Letta's own settings object holding ``openai_api_key`` (``letta.settings.model_settings``),
    or None where the build has none. The OpenAI key is Letta's, not the Kimi provider's: a
    fork may keep its Kimi settings on an object of its own (the binding's ``settings``)."""
    try:
        from letta.settings import model_settings
    except ImportError:
        return None
    return model_settings if "openai_api_key" in getattr(type(model_settings), "model_fields", {}) else None


def provider_key(provider) -> str | None:
    """The key a provider carries, in clear, without tripping deprecation shims."""
    secret = provider.__dict__.get("api_key_enc")
    if secret is not None:
        plain = secret.get_plaintext()
        if plain:
            return plain
    return provider.__dict__.get("api_key")


# --------------------------------------------------------------------------------------
# database


def prepare_database(home: Path, server_class) -> None:
    """Make the build's database usable in this process, once.

    Letta 0.16 binds ``letta.server.db`` to ``settings.letta_pg_uri`` (a Postgres
    default) at import. When no Postgres is configured, the kit points the session
    factory at ``home/letta-kit.db``, creates the tables from the ORM metadata and seeds
    it (``_seed_template``): the template each started server gets a copy of. Builds that manage SQLite themselves (0.11) create their tables on the first
    synchronous session; the kit then creates the default organization and user
    through the managers (or, where those methods are missing, lets a full server
    construction do it). Later servers of the run skip that work. Either way the process
    constructs one server of the build here, before any test, with or without the shared template.
    """
    shared = os.environ.get(SHARED_TEMPLATE_VARIABLE)
    if shared and Path(shared).is_file() and _use_shared_template(home, Path(shared)):
        # The process's first server object, as ``_seed_template`` makes it below: a build that
        # decides something once per process (at its first construction) meets the same first
        # server under the fork runner as in a process of its own.
        asyncio.run(_construct_once(server_class))
        return
    if use_sqlite_if_postgres_only(home):
        asyncio.run(_seed_template(server_class))
    else:
        _bootstrap_default_org_and_user(server_class)


def _postgres_only_unconfigured() -> bool:
    """The build's database layer only speaks Postgres (0.16: ``letta.server.db`` with an async
    session factory) and no Postgres is configured."""
    from letta.settings import settings

    try:
        from letta.server import db
    except ImportError:
        return False
    return hasattr(db, "async_session_factory") and not getattr(settings, "letta_pg_uri_no_default", None)


def use_sqlite_if_postgres_only(home: Path) -> bool:
    """On a build whose database layer only speaks Postgres (0.16) and no Postgres is
    configured, point it at ``home/letta-kit.db`` with every table created; True if done.

    Used in the test process (``prepare_database``) and in the ``letta server`` process
    the REST suite starts (``kimi_conformance.serve_letta``).
    """
    if not _postgres_only_unconfigured():
        return False
    from letta.orm import Base

    template = home / "letta-kit.db"
    engine = _point_database_at(template)

    async def create_tables():
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    asyncio.run(create_tables())
    _KIT_DATABASE.update(template=template, current=template)
    return True


# Set by the fork server in a child whose build cannot change the database's schema or seeded
# rows (``kimi_conformance.matrix``: ``shares_database``): the seeded template its parent made
# once from the reference build (``make_shared_template``). Never set in a test process of its own.
SHARED_TEMPLATE_VARIABLE = "KIMI_SHARED_DATABASE_TEMPLATE"


def make_shared_template(path: Path, server_class) -> bool:
    """Make the seeded template (``prepare_database``'s, 0.16 on SQLite) at ``path``; False where the build has none."""
    if not use_sqlite_if_postgres_only(path.parent):
        return False
    asyncio.run(_seed_template(server_class))
    shutil.copyfile(_KIT_DATABASE["template"], path)
    return True


def _use_shared_template(home: Path, shared: Path) -> bool:
    """``prepare_database`` from a copy of ``shared`` (made by ``make_shared_template``) instead of making the template here."""
    if not _postgres_only_unconfigured():
        return False
    template = home / "letta-kit.db"
    shutil.copyfile(shared, template)
    _point_database_at(template)
    _KIT_DATABASE.update(template=template, current=template)
    return True


# The SQLite file the kit made for this process (0.16 without Postgres): its seeded
# template and the copy the last started server uses (always ``STARTED_DATABASE`` beside it).
_KIT_DATABASE: dict[str, Path] = {}
# The pooled engine of the started servers' copies (``fresh_database``): one per process, its pool
# disposed at each start (the connections of the previous server's copy closed) and by
# ``close_database``. Kept, not made anew, for its compiled-statement cache: the same ORM
# statements of each start are compiled once per process (about a third of a 0.16 start's
# compilations otherwise; SQL text only, no rows, no connection).
_KIT_ENGINE: dict[str, Any] = {}
STARTED_DATABASE = "letta-kit-started.db"
# One connection per concurrent session, kept between sessions: opening an aiosqlite connection
# (a thread and a file open) per session was ~40% of a 0.16 start-up on NullPool.
POOL_SIZE = 8


def _point_sessions_at(engine) -> None:
    """Point 0.16's session factory (``letta.server.db``, read at each session) at ``engine``."""
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from letta.server import db

    db.async_session_factory = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, autocommit=False, autoflush=False)
    db.engine = engine


def _point_database_at(path: Path, pooled: bool = False):
    """Point 0.16's database layer at SQLite ``path``; returns the engine.

    ``pooled``: keep up to ``POOL_SIZE`` connections open between sessions (any number more
    while busy, ``max_overflow=-1``); the caller disposes the engine (``close_database``).
    Otherwise each session opens and closes its own connection (``NullPool``).
    """
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

    url = f"sqlite+aiosqlite:///{path}"
    if pooled:
        engine = create_async_engine(url, poolclass=AsyncAdaptedQueuePool, pool_size=POOL_SIZE, max_overflow=-1)
    else:
        engine = create_async_engine(url, poolclass=NullPool)
    event.listen(engine.sync_engine, "connect", _no_sync_to_disk)
    _point_sessions_at(engine)
    return engine


def _no_sync_to_disk(connection, _record) -> None:
    """A test run's database is thrown away: no fsync at each of the start-up's many commits."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


async def close_database() -> None:
    """Close the started server's pooled connections (``fresh_database``), if any. Idempotent."""
    engine = _KIT_ENGINE.pop("current", None)
    if engine is not None:
        await engine.dispose()


async def fresh_database() -> bool:
    """Give the next server a database of its own where the kit made the build's (0.16 on SQLite): a copy
    of the seeded template at ``STARTED_DATABASE``, replacing the previous server's; True if done.

    A started 0.16 server persists its base providers and their models, and a later start
    keeps a persisted provider as it is (``sync_base_providers`` never updates one), as a
    real restart with another ``KIMI_BASE_URL`` would: each test judges a fresh deployment.
    The previous server's connections are closed first (the engine's pool disposed); the engine
    itself, and so its cache of compiled statements, is kept for the next start.
    """
    template = _KIT_DATABASE.get("template")
    if template is None:
        return False
    engine = _KIT_ENGINE.get("current")
    if engine is not None:
        await engine.dispose()
    started = template.with_name(STARTED_DATABASE)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{started}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, started)
    if engine is None:
        engine = _KIT_ENGINE["current"] = _point_database_at(started, pooled=True)
    # The build sees a new engine object at each start (``letta.server.db.engine``, as a new deployment
    # would: state a build keys on its engine stays with that server) that shares the kept engine's
    # pool, dialect and compiled-statement cache (``execution_options()``: an OptionEngine).
    _point_sessions_at(engine.execution_options())
    _KIT_DATABASE["current"] = started
    return True


async def _construct_once(server_class) -> None:
    """One server object of the build, constructed inside an event loop as ``_seed_template`` does."""
    construct_server(server_class)


async def _seed_template(server_class) -> None:
    """Put into the kit's empty database what every start-up makes whatever the environment (the
    default organization and user, Letta's base tools), so that each server's start on a copy
    only updates them (~0.3 s instead of ~1.5 s). No provider: those are each start's."""
    server = construct_server(server_class)
    actor = await default_actor(server)
    tools = getattr(server, "tool_manager", None)
    if hasattr(tools, "upsert_base_tools_async"):
        await tools.upsert_base_tools_async(actor=actor)


def _bootstrap_default_org_and_user(server_class) -> None:
    server = construct_server(server_class)
    orgs, users = server.organization_manager, server.user_manager
    if hasattr(orgs, "create_default_organization") and hasattr(users, "create_default_user"):
        orgs.create_default_organization()
        users.create_default_user()
    else:  # a build without the synchronous manager methods: its own full bootstrap
        server_class()


# --------------------------------------------------------------------------------------
# server


async def default_actor(server):
    """The default actor, creating the default organization and user if the build has not."""
    actor = getattr(server, "default_user", None)
    if actor is not None:
        return actor
    orgs, users = server.organization_manager, server.user_manager
    if hasattr(orgs, "create_default_organization_async"):
        await orgs.create_default_organization_async()
    else:
        orgs.create_default_organization()
    if hasattr(users, "create_default_actor_async"):
        return await users.create_default_actor_async()
    return users.create_default_user()


def construct_server(server_class):
    """A server object, skipping the per-construction bootstrap where the build allows it
    (the database was bootstrapped once by ``prepare_database``)."""
    if "init_with_default_org_and_user" in inspect.signature(server_class.__init__).parameters:
        return server_class(init_with_default_org_and_user=False)
    return server_class()


async def start_server(server_class):
    """A server started the way ``letta server`` starts it, plus its default actor.

    Where the build's server has an async start-up (``init_async``, 0.12 on; what the REST
    app's lifespan awaits), it runs: default organization and user, base tools, and from
    0.16 the base providers and their models synced into the database (which lists each
    enabled provider's models: the caller answers or cuts off those requests). A build may
    enable providers there too. Older builds start in their constructor. On the kit's
    SQLite database each start gets a fresh one (``fresh_database``).
    """
    seeded = await fresh_database()
    server = construct_server(server_class)
    if hasattr(server, "init_async"):
        with _base_tools_kept(server, seeded):
            await server.init_async(init_with_default_org_and_user=True)
    return server, await default_actor(server)


@contextmanager
def _base_tools_kept(server, seeded: bool):
    """On a copy of the seeded template, the start-up's upsert of Letta's base tools (same code,
    same rows: ~0.6 s of each start) is skipped for this server only. Base tools are
    Letta's, never a provider's; everything else of the start-up runs."""
    tools = getattr(server, "tool_manager", None)
    if not seeded or not hasattr(tools, "upsert_base_tools_async"):
        yield
        return

    async def already_seeded(*args, **kwargs):
        return None

    tools.upsert_base_tools_async = already_seeded  # an attribute of this server's manager instance
    try:
        yield
    finally:
        del tools.upsert_base_tools_async



# --------------------------------------------------------------------------------------
# calling the build


async def call(method, *args, **kwargs) -> Any:
    """Call a method of the build and await its result when it is awaitable.

    The one way the suites call into the build: the contract leaves sync/async free
    (a listing helper may be ``async`` where the guide has it sync, or the reverse).
    """
    return await maybe_await(method(*args, **kwargs))


def _user_message(text: str):
    from letta.schemas.enums import MessageRole
    from letta.schemas.letta_message_content import TextContent
    from letta.schemas.message import Message

    return Message(role=MessageRole.user, content=[TextContent(text=text)])


def _named_parameters(method) -> set[str] | None:
    """The keyword names ``method`` accepts; None when nothing up its MRO says (``**kwargs`` all the way)."""
    candidates = [method]
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", None)
    if owner is not None and name:
        klass = owner if isinstance(owner, type) else type(owner)
        candidates += [k.__dict__[name] for k in klass.__mro__ if name in k.__dict__]
    for candidate in candidates:
        try:
            params = inspect.signature(candidate).parameters
        except (TypeError, ValueError):
            continue
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return set(params) - {"self"}
    return None


async def chat_step(client, llm_config, *, text: str, tools: list[dict] | None = None, send_config=None, sync: bool = False):
    """One LLM call the way Letta's agent loop makes it: ``build_request_data``, then
    ``request_async`` (``request`` where the client has no async path), then
    ``convert_response_to_chat_completion``. Returns the converted reply.

    ``send_config`` (default ``llm_config``) is the config the request is sent with: Letta's
    own request building reads ``model_endpoint``, so a config without one can only be
    judged at the sending step. Errors of the request path propagate unchanged. ``sync``: send
    with ``request`` (Letta's legacy agent and summarizer call it through ``send_llm_request``).
    """
    send_config = send_config or llm_config
    values = request_arguments(client, llm_config, text=text, tools=tools)
    messages = values["messages"]
    request_data = await call(client.build_request_data, **values)
    send = client.request if sync else getattr(client, "request_async", None) or client.request
    raw = await call(send, request_data, send_config)
    return await call(client.convert_response_to_chat_completion, raw, messages, send_config)


def request_arguments(client, llm_config, *, text: str | None = None, messages: list | None = None, tools: list[dict] | None = None,
                      force_tool_call: str | None = None) -> dict:
    """The keyword arguments of the client's ``build_request_data`` for stored ``messages`` (or
    one user message ``text``), only those its signature names (Letta's signature grew between
    versions; 0.12 on adds a leading ``agent_type``). ``force_tool_call``: the one tool the agent
    loop names when tool rules allow only it (see ``takes_forced_tool``)."""
    values = {
        "messages": messages if messages is not None else [_user_message(text)],
        "llm_config": llm_config,
        "tools": tools,
        "force_tool_call": force_tool_call,
        "agent_type": _default_agent_type(),
    }
    # a (*args, **kwargs) override gets the names Letta's own definition up the MRO takes
    accepted = _named_parameters(client.build_request_data)
    return values if accepted is None else {k: v for k, v in values.items() if k in accepted}


def takes_forced_tool(client) -> bool:
    """Whether the client's ``build_request_data`` takes ``force_tool_call`` (Letta's agent loop passes
    the tool's name when tool rules allow exactly one tool)."""
    accepted = _named_parameters(client.build_request_data)
    return accepted is None or "force_tool_call" in accepted


def _default_agent_type():
    try:
        from letta.schemas.enums import AgentType
    except ImportError:
        return None
    for name in ("letta_v1_agent", "memgpt_v2_agent", "memgpt_agent"):
        if hasattr(AgentType, name):
            return getattr(AgentType, name)
    return None


async def store_provider(server, actor, *, name: str, provider_type, api_key: str, base_url: str):
    """A provider stored by the user (byok) through the server's provider manager.

    Returns ``(id, lacking)``: the stored provider's id and the request fields this
    build's ``ProviderCreate`` has no room for (``base_url`` before 0.11; see ``provider_create``).
    """
    from letta.schemas.providers import ProviderCreate

    request, lacking = provider_create(ProviderCreate, name=name, provider_type=provider_type, api_key=api_key, base_url=base_url)
    stored = await server.provider_manager.create_provider_async(request, actor=actor)
    return stored.id, lacking


def stored_provider_url(provider_class, base_url: str) -> str:
    """Where a provider stored with ``base_url`` talks to Moonshot: ``base_url``, or before 0.11
    (``ProviderCreate`` has no ``base_url``) its class's default URL."""
    from letta.schemas.providers import ProviderCreate

    if "base_url" in getattr(ProviderCreate, "model_fields", {}):
        return base_url
    return default_base_url(provider_class) or base_url


def sync_stored_key_lookup_unavailable(server, actor, name: str, key: str) -> str | None:
    """Why Letta's own synchronous lookup of a stored provider's key (``get_override_key``,
    what ``LLMClientBase.get_byok_overrides`` calls on the sync ``request`` path) cannot give
    ``key`` for the stored provider ``name`` on this Letta line; None when it does.

    Letta's code, not the build's Kimi code: 0.12 has ``get_override_key`` without the
    synchronous ``list_providers`` it calls; 0.16's calls ``db_registry.get_session``, which
    its database registry lacks.
    """
    lookup = getattr(server.provider_manager, "get_override_key", None)
    what = "Letta's own synchronous stored-provider key lookup (ProviderManager.get_override_key)"
    if lookup is None:
        return f"{what} is missing"
    try:
        found = lookup(name, actor=actor)
    except Exception as e:  # noqa: BLE001 - Letta's own lookup failing is the answer
        first_line = (str(e).splitlines() or [""])[0][:120]
        return f"{what} raises {type(e).__name__}" + (f": {first_line}" if first_line else "")
    return None if found == key else f"{what} does not return the stored key"


async def delete_stored_provider(server, actor, provider_id) -> None:
    await server.provider_manager.delete_provider_by_id_async(provider_id, actor=actor)


def cached_resolution(server):
    """The server's cached handle resolution: the guide's ``get_cached_llm_config_async``
    where the build has it, else its handle resolution itself (0.16 resolves from the
    models synced into the database, which is its cache)."""
    return getattr(server, "get_cached_llm_config_async", None) or server.get_llm_config_from_handle_async


# --------------------------------------------------------------------------------------
# an agent step: the LLM call and the stored step, the way the build's agent loop does them


class AgentReply:
    """The agent loop's view of one LLM call: the converted reply and the content it stores
    beside the tool call (reasoning, text). ``fallback`` names what the kit had to do by hand
    because the build has no callable path for it (None: all through the build)."""

    def __init__(self, chat, content: list | None, fallback: str | None = None):
        self.chat = chat
        self.content = content
        self.fallback = fallback

    @property
    def message(self):
        return self.chat.choices[0].message


def _request_adapter():
    """The adapter the agent loop makes a blocking LLM call through (0.12 on), or None."""
    try:
        from letta.adapters.simple_llm_request_adapter import SimpleLLMRequestAdapter
    except ImportError:
        return None
    return SimpleLLMRequestAdapter


def _agent_step_call_type():
    try:
        from letta.schemas.enums import LLMCallType
    except ImportError:
        return None
    return getattr(LLMCallType, "agent_step", None)


async def agent_llm_call(client, llm_config, request_data: dict, messages: list, tools: list | None) -> AgentReply:
    """Send ``request_data`` and turn the answer into what the agent stores, the way the build's
    agent loop does: through its request adapter (``SimpleLLMRequestAdapter.invoke_llm``: request,
    ``convert_response_to_chat_completion``, reasoning and content extraction), or, where the
    agent loop does it inline (``LettaAgent._step`` before 0.12), the client's request path and
    the agent's extraction rule written out here (``fallback`` says so). Errors propagate."""
    adapter_class = _request_adapter()
    if adapter_class is not None:
        wanted = {"llm_client": client, "llm_config": llm_config, "call_type": _agent_step_call_type()}
        accepted = _named_parameters(adapter_class.__init__) or set(wanted)
        adapter = adapter_class(**{k: v for k, v in wanted.items() if k in accepted})
        async for _ in adapter.invoke_llm(request_data=request_data, messages=messages, tools=tools or [], use_assistant_message=False):
            pass
        return AgentReply(adapter.chat_completions_response, adapter.content)
    send = getattr(client, "request_async", None) or client.request
    raw = await call(send, request_data, llm_config)
    chat = await call(client.convert_response_to_chat_completion, raw, messages, llm_config)
    return AgentReply(chat, _inline_agent_content(chat.choices[0].message),
                      fallback="this Letta line extracts the reasoning inside LettaAgent._step: the kit applies its rule (the storing function and the serializer are the build's)")


def _inline_agent_content(message) -> list | None:
    """What ``LettaAgent._step`` (up to 0.11) stores beside the tool call, written out: the native
    reasoning, else the text, else the omitted-reasoning marker."""
    from letta.schemas.letta_message_content import OmittedReasoningContent, ReasoningContent, TextContent

    if message.reasoning_content:
        return [ReasoningContent(reasoning=message.reasoning_content, is_native=True, signature=getattr(message, "reasoning_content_signature", None))]
    if message.content:
        return [TextContent(text=message.content)]
    if getattr(message, "omitted_reasoning_content", False):
        return [OmittedReasoningContent()]
    return None


def stored_tool_step(llm_config, reply: AgentReply, *, tool_result: str, continue_stepping: bool = True) -> list:
    """The messages the agent stores for the reply's first tool call and the tool's result
    ``tool_result``, made by the build's own storing function (``server/rest_api/utils.py``):
    ``create_parallel_tool_messages_from_llm_response`` where the build has it (the v3 agent
    stores every tool step with it), else ``create_letta_messages_from_llm_response``."""
    import json

    from letta.server.rest_api import utils as storing
    from letta.schemas.tool_execution_result import ToolExecutionResult

    call_ = reply.message.tool_calls[0]
    arguments = json.loads(call_.function.arguments or "{}")
    executed = ToolExecutionResult(status="success", func_return=tool_result)
    parallel = getattr(storing, "create_parallel_tool_messages_from_llm_response", None)
    if parallel is not None:
        return parallel(agent_id=None, model=llm_config.model, tool_call_specs=[{"name": call_.function.name, "arguments": arguments, "id": call_.id}],
                        tool_execution_results=[executed], function_responses=[tool_result], timezone="UTC",
                        reasoning_content=reply.content, tool_returns=[])
    values = {
        "agent_id": None, "model": llm_config.model, "function_name": call_.function.name, "function_arguments": arguments,
        "tool_execution_result": executed, "tool_call_id": call_.id, "function_call_success": True, "function_response": tool_result,
        "timezone": "UTC", "actor": None, "continue_stepping": continue_stepping, "heartbeat_reason": None,
        "reasoning_content": reply.content,
    }
    accepted = _named_parameters(storing.create_letta_messages_from_llm_response)
    if accepted is not None and "add_heartbeat_on_continue" in accepted:  # the v3 agent (0.12-0.15) stores no heartbeat
        values.update(force_set_request_heartbeat=False, add_heartbeat_on_continue=False)
    return storing.create_letta_messages_from_llm_response(**{k: v for k, v in values.items() if accepted is None or k in accepted})

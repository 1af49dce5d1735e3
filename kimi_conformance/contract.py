"""The behaviours of the Kimi provider contract (CONTRACT.md), as data.

The kit ships its own copy of the ID table so that it works outside this
repository; ``tests/test_contract_table.py`` checks it against the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

MUST, SHOULD, INFO = "MUST", "SHOULD", "INFO"


@dataclass(frozen=True)
class Behavior:
    id: str
    level: str
    guide: str  # sections of the Kimi provider guide it encodes
    summary: str

    @property
    def group(self) -> str:
        return self.id.split("-", 1)[0] if not self.id.startswith("ROUTE") else "CLIENT"


BEHAVIORS: dict[str, Behavior] = {
    b.id: b
    for b in [
        Behavior("LIST-PREFIX", MUST, "§2.1", "listing keeps exactly the ids starting with moonshot- or kimi-"),
        Behavior("LIST-CONTEXT", MUST, "§2.3, §3.2.3", "context_length wins; absent means 8192"),
        Behavior("LIST-FALLBACK", MUST, "§3.2.1, §3.2.3, §6.2", "any failure or nothing usable gives the hardcoded list; a failure warns"),
        Behavior("LIST-FALLBACK-NOTICE", SHOULD, "§3.2.3", "falling back because nothing usable was listed warns too"),
        Behavior("LIST-FIELDS", MUST, "§3.2.3", "model, endpoint, handle, provider name and category of listed configs"),
        Behavior("LIST-REQUEST", MUST, "§3.2.2", "listing sends GET {base_url}/models with the Bearer key"),
        Behavior("AUTH-401", MUST, "§2.2", "a 401 raises LLMAuthenticationError with ErrorCode.UNAUTHENTICATED"),
        Behavior("AUTH-NOKEY", MUST, "§2.2, §6.3", "no key raises ValueError before any request"),
        Behavior("AUTH-OTHER", MUST, "§2.2", "other HTTP and network errors raise LLMError, never the auth error"),
        Behavior("AUTH-OK", MUST, "§2.2", "a 200 returns normally and carried the Bearer key"),
        Behavior("HANDLE-FORMAT", MUST, "§3.1.1, §3.2.4, §4.1.3", "handle is <provider name>/<last segment of the id>"),
        Behavior("ENABLE-KEY", MUST, "§3.1.4, §4.1.1", "KIMI_API_KEY enables a base provider named kimi with key and base URL"),
        Behavior("ENABLE-FLAG", MUST, "§3.1.4", "a non-empty LETTA_DISABLE_KIMI_PROVIDER disables it"),
        Behavior("ENABLE-NOKEY", MUST, "§3.1.4", "no key, no Kimi provider; the letta provider remains"),
        Behavior("RESOLVE-HANDLE", MUST, "§3.1.1", "a kimi/<id> handle resolves to that id's config"),
        Behavior("RESOLVE-UNKNOWN-MODEL", MUST, "§3.1.1", "an unknown model raises HandleNotFoundError listing the handles"),
        Behavior("RESOLVE-UNKNOWN-PROVIDER", MUST, "§3.1.2", "an unknown provider raises ValueError naming the supported ones"),
        Behavior("RESOLVE-CACHE", MUST, "§3.1.1, §5.1", "the cached lookup resolves (and lists) once for the same arguments"),
        Behavior("RESOLVE-BYOK", SHOULD, "§3.1.3", "a stored (byok) Kimi provider is listed beside the environment one"),
        Behavior("CLIENT-DISPATCH", MUST, "§3.3.4", "the client factory gives a KimiClient for ProviderType.kimi"),
        Behavior("CLIENT-KWARGS", MUST, "§3.3.5", "the client takes key and base URL from settings, env and the config"),
        Behavior("CLIENT-CHAT", MUST, "§3.3.6", "a chat completion goes to {base_url}/chat/completions and tool calls come back"),
        Behavior("ROUTE-KEY", SHOULD, "§3.2.3, §3.3.4", "a listed Kimi model reaches the Kimi base URL with the Kimi key"),
        Behavior("CLIENT-HISTORY", SHOULD, "§3.3.1, §3.3.2, §3.3.3", "the next request of a tool step keeps tool-call ids, tool_call_id and reasoning_content"),
        Behavior("CLIENT-PARAMS", SHOULD, "§3.3.6", "only the temperature and tool_choice Moonshot accepts for the model are sent"),
        Behavior("CLIENT-STREAM", SHOULD, "§3.3.6", "a streamed completion assembles the same message as the unstreamed one"),
        Behavior("CLIENT-ERRORS", SHOULD, "§6.1", "a failed chat request raises Letta's error for its kind"),
        Behavior("REST-MODELS", SHOULD, "black box", "GET /v1/models/ lists kimi/<id> handles; none with the flag"),
        Behavior("REST-AGENT", SHOULD, "black box", "an agent on kimi/<id> answers with the replayed reply"),
        Behavior("DRIFT-MODELS", INFO, "live", "hardcoded ids against the live list"),
        Behavior("DRIFT-SHAPE", INFO, "live", "fields of live /models entries against the cassettes"),
    ]
}


def level_of(behavior_id: str) -> str:
    return BEHAVIORS[behavior_id].level

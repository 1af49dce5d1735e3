"""``python3 -m kimi_conformance discover``: propose a binding for a build (work in progress)."""

from __future__ import annotations


def hint() -> str:
    """For the 'no Kimi provider' verdict: what ``discover`` would find in this process (or nothing)."""
    return ""

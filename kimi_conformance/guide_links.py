"""Links from a behaviour to the sections of the Kimi provider guide it encodes.

CONTRACT.md cites the guide (``kimi-provider-guide.zh.md``) by section number
(``§3.2.3``); a link is the guide's location plus the anchor a Markdown renderer
(GitHub, GitLab) gives that section's heading. The headings are kept here so that
the kit works without the guide beside it; ``tests/test_reports.py`` checks them
against the guide when it is there.

Where the guide lives: ``KIMI_CONFORMANCE_GUIDE_URL`` (a URL or path of the guide
file), else the guide beside this checkout (``../shared/spec/``) as a ``file:`` URL,
else the bare file name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

GUIDE_FILE = "kimi-provider-guide.zh.md"
GUIDE_URL_ENV = "KIMI_CONFORMANCE_GUIDE_URL"
GUIDE_BESIDE_CHECKOUT = Path(__file__).resolve().parent.parent.parent / "shared" / "spec" / GUIDE_FILE

# Section number -> heading text (after the number), as in the guide.
HEADINGS: dict[str, str] = {
    "1": "概述",
    "2": "常见问题类型",
    "2.1": "模型识别问题",
    "2.2": "API密钥验证问题",
    "2.3": "上下文窗口配置问题",
    "3": "详细追踪流程",
    "3.1": "从用户输入到模型选择",
    "3.1.1": "代理创建过程",
    "3.1.2": "提供商获取过程",
    "3.1.3": "启用提供商列表获取",
    "3.1.4": "服务器初始化时的提供商加载",
    "3.2": "模型列表获取过程",
    "3.2.1": "异步模型列表获取",
    "3.2.2": "API调用获取模型列表",
    "3.2.3": "模型数据处理",
    "3.2.4": "句柄生成",
    "3.3": "LLM请求处理过程",
    "3.3.1": "代理步骤处理",
    "3.3.2": "内部步骤处理",
    "3.3.3": "AI回复获取",
    "3.3.4": "LLM客户端创建",
    "3.3.5": "Kimi客户端配置",
    "3.3.6": "OpenAI客户端请求",
    "4": "问题诊断步骤",
    "4.1": "模型不可用问题诊断",
    "4.1.1": "检查提供商是否启用",
    "4.1.2": "检查模型列表获取",
    "4.1.3": "检查句柄生成",
    "4.2": "API密钥问题诊断",
    "4.2.1": "检查API密钥配置",
    "4.2.2": "直接API调用测试",
    "5": "性能优化建议",
    "5.1": "缓存策略",
    "5.2": "连接复用",
    "5.3": "异步处理",
    "6": "最佳实践",
    "6.1": "错误处理",
    "6.2": "日志记录",
    "6.3": "配置验证",
    "7": "总结",
}

_HEADING_LINE = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? (.+?)\s*$")


def heading_line(section: str) -> str:
    """The heading as written in the guide: ``2.1 模型识别问题`` (top-level ones as ``2. ...``)."""
    number = section if "." in section else f"{section}."
    return f"{number} {HEADINGS[section]}"


def anchor(section: str) -> str:
    """The anchor GitHub/GitLab give the section's heading (lower case, punctuation dropped, spaces to '-')."""
    text = heading_line(section).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def sections(cited: str) -> list[str]:
    """The section numbers a CONTRACT.md citation names (``"§2.3, §3.2.3"`` -> ``["2.3", "3.2.3"]``)."""
    return [s for s in re.findall(r"§(\d+(?:\.\d+)*)", cited) if s in HEADINGS]


def guide_url() -> str:
    configured = os.environ.get(GUIDE_URL_ENV, "").strip()
    if configured:
        return configured
    return GUIDE_BESIDE_CHECKOUT.as_uri() if GUIDE_BESIDE_CHECKOUT.exists() else GUIDE_FILE


def links(cited: str) -> list[tuple[str, str]]:
    """``(name, url)`` for each guide section a behaviour cites; none for "black box" or "live"."""
    base = guide_url().split("#", 1)[0]
    return [(f"guide §{s} {HEADINGS[s]}", f"{base}#{quote(anchor(s))}") for s in sections(cited)]


CONTRACT_FILE = "CONTRACT.md"
CONTRACT_URL_ENV = "KIMI_CONFORMANCE_CONTRACT_URL"
_CONTRACT_SECTION = re.compile(r"^## ([A-Z]+): .*$")


def _kit_contract() -> Path:
    """The kit's own CONTRACT.md (checkout: top level; installed: in the kimi_conformance_kit tree)."""
    from kimi_conformance.builds import KIT_ROOT

    return KIT_ROOT / CONTRACT_FILE


def contract_url() -> str:
    """Where a reader finds the contract: ``KIMI_CONFORMANCE_CONTRACT_URL`` (a hosted copy, for served
    reports), else the kit's CONTRACT.md as a ``file:`` URL, else the bare file name."""
    configured = os.environ.get(CONTRACT_URL_ENV, "").strip()
    if configured:
        return configured.split("#", 1)[0]
    path = _kit_contract()
    return path.as_uri() if path.exists() else CONTRACT_FILE


def contract_anchor(behavior_id: str) -> str:
    """The anchor of the CONTRACT.md section that holds an ID (``LIST-PREFIX`` -> ``list-model-listing-...``)."""
    from kimi_conformance.contract import BEHAVIORS

    behavior = BEHAVIORS.get(behavior_id)
    group = behavior.group if behavior else behavior_id.split("-", 1)[0]  # ROUTE-KEY lives in the CLIENT section
    try:
        text = _kit_contract().read_text(encoding="utf-8")
    except OSError:
        return ""
    for line in text.splitlines():
        match = _CONTRACT_SECTION.match(line)
        if match and match.group(1) == group:
            return re.sub(r"[^\w\- ]", "", line[3:].strip().lower()).replace(" ", "-")
    return ""


def contract_link(behavior_id: str) -> tuple[str, str]:
    """``(name, url)`` of the contract's section for a behaviour ID."""
    anchor = contract_anchor(behavior_id)
    return f"contract {behavior_id}", contract_url() + (f"#{quote(anchor)}" if anchor else "")


def headings_in(guide_text: str) -> dict[str, str]:
    """The numbered headings of a guide file (to check HEADINGS against it)."""
    found = {}
    for line in guide_text.splitlines():
        match = _HEADING_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found

"""Every output of a run passes :func:`kimi_conformance.redact.redact` (the one redactor).

- test reports (failure texts, skip reasons, captured output and logs, user properties)
  and warnings are redacted as they are made, so the terminal, JUnit and Allure see them clean;
- log records are redacted when they are made (log files, live logging, captured logs);
- the JUnit file is redacted once more after pytest wrote it (properties, test names).

The JSON report, the Markdown summary, the terminal summaries and the Allure results
folder are redacted where they are written (report.py, summary_md.py, plugin.py,
live.py, allure_results.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kimi_conformance.redact import redact, redact_data


def _redacted_longrepr(longrepr):
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return (longrepr[0], longrepr[1], redact(str(longrepr[2])))
    text = str(longrepr)
    clean = redact(text)
    return longrepr if clean == text else clean


def redact_report(report: pytest.TestReport) -> None:
    report.longrepr = _redacted_longrepr(report.longrepr)
    report.sections = [(redact(title), redact(content)) for title, content in report.sections]
    report.user_properties = [(name, redact_data(value)) for name, value in report.user_properties]
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = redact(report.wasxfail)


class RedactionPlugin:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.factory = logging.getLogRecordFactory()
        original = self.factory

        def redacted_record(*args, **kwargs):
            record = original(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a broken format string stays as it was: logging reports it
                return record
            clean = redact(message)
            if clean != message:
                record.msg, record.args = clean, ()
            return record

        logging.setLogRecordFactory(redacted_record)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: after every other plugin rated the report
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        redact_report(outcome.get_result())

    @pytest.hookimpl(tryfirst=True)  # before the terminal's warnings summary and JUnit keep the text
    def pytest_warning_recorded(self, warning_message, when, nodeid, location) -> None:
        message = warning_message.message
        text = str(message)
        clean = redact(text)
        if clean != text:
            if isinstance(message, Warning):
                message.args = (clean,)
            else:
                warning_message.message = clean

    def pytest_collectreport(self, report) -> None:
        report.longrepr = _redacted_longrepr(report.longrepr)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        logging.setLogRecordFactory(self.factory)
        xml = getattr(config.option, "xmlpath", None)
        if xml and not hasattr(config, "workerinput"):
            redact_file(Path(xml))


def redact_file(path: Path) -> bool:
    """Redact a written text file in place (atomically); whether it changed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    clean = redact(text)
    if clean == text:
        return False
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(clean, encoding="utf-8")
    os.replace(tmp, path)
    return True


def register(config: pytest.Config) -> None:
    config.pluginmanager.register(RedactionPlugin(config), "kimi-conformance-redaction")

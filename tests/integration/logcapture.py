"""A fixture that sees every log record of a test, for "no secret in any log" assertions."""

from __future__ import annotations

import logging
from collections.abc import Iterator


class Records(logging.Handler):
    """Every log record of the test, at DEBUG, from every logger (IMAP protocol log included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)

    def of(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]


def capture_logs() -> Iterator[Records]:
    """Collect every log record while the generator is open (a fixture body: ``yield from``).

    caplog loses records once Airflow reconfigures logging, so this handler is installed after
    Airflow has done that, on the root logger, at DEBUG.
    """
    from airflow.models.connection import Connection  # noqa: F401  (configures logging first)

    handler = Records()
    root = logging.getLogger()
    loggers = [root, logging.getLogger("inboxsync"), logging.getLogger("imapclient")]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled

"""Offline replica of gov.kz (MFA of Kazakhstan statements) for tests and `monitor demo`."""

from monitor.replica.server import MODES, REST_FORMATS, ReplicaSite
from monitor.replica.statements import LANGS, STATEMENTS, Statement, StatementText

__all__ = [
    "LANGS",
    "MODES",
    "REST_FORMATS",
    "STATEMENTS",
    "ReplicaSite",
    "Statement",
    "StatementText",
]

"""Result types shared by every check: one CheckResult per finding, gathered in a CheckReport."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("pass", "warn", "fail", "info")


@dataclass
class CheckResult:
    check: str  # e.g. "size", "budget:play-apk", "ops:gpu", "int8", "memory"
    status: str  # pass | warn | fail | info
    value: Any = None  # what was measured
    limit: Any = None  # what it was compared with (None: nothing to compare)
    hint: str | None = None  # what to do about it
    message: str = ""  # one line for people
    gate: bool = False  # True when the user asked for this gate (a fail exits 1)
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class CheckReport:
    path: str
    format: str
    results: list[CheckResult]
    sections: dict = field(default_factory=dict)  # size / ops / int8 / memory / compute tables
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail" and r.gate]

    @property
    def ok(self) -> bool:
        return not self.failed

    def get(self, check: str) -> CheckResult | None:
        return next((r for r in self.results if r.check == check), None)

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "path": self.path,
            "format": self.format,
            "ok": self.ok,
            "failed": [r.check for r in self.failed],
            "results": [r.to_json() for r in self.results],
            "sections": self.sections,
            "notes": self.notes,
        }

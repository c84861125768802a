"""The docs that must equal their sources."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_device_protocol_in_docs_is_the_shared_one():
    shared = ROOT.parent / "shared" / "DEVICE_PROTOCOL.md"
    if not shared.exists():
        pytest.skip("../shared is not beside the checkout")
    assert (ROOT / "docs" / "device_protocol.md").read_text() == shared.read_text(), (
        "docs/device_protocol.md differs from ../shared/DEVICE_PROTOCOL.md: copy it again"
    )


def test_every_command_has_its_doc():
    for doc in ("convert", "check", "verify", "package", "bench", "report", "device_protocol", "architecture"):
        assert (ROOT / "docs" / f"{doc}.md").stat().st_size > 500, doc

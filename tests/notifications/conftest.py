from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifications.fakes.server import Certificates, make_certificates


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("fake-push-tls"))


@pytest.fixture
def closing() -> Iterator[list[object]]:
    """Channels a test opened, closed after it (their HTTP connections)."""
    opened: list[object] = []
    yield opened
    for channel in opened:
        close = getattr(channel, "close", None)
        if close is not None:
            close()

"""Fixtures of the end-to-end tests: make serve as a process of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heartbeat_local.process import LocalProcess, local_endpoint


@pytest.fixture(scope="module")
def endpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    """`python -m heartbeat_local` (what make serve runs) on free ports, one per test module.

    Its settings are the module's SERVE_SETTINGS (environment variables, e.g. AUTH_MODE), if it has any.
    """
    settings: dict[str, str] = getattr(request.module, "SERVE_SETTINGS", {})
    with local_endpoint(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]), **settings) as running:
        yield running

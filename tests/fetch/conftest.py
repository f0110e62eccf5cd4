"""Fixtures for the fetch tests: a local HTTP server (``fetch_server``), stopped when the test ends."""

from __future__ import annotations

import pytest
from fetch_server import serve, stop


@pytest.fixture
def server():
  srv = serve()
  try:
    yield srv
  finally:
    stop(srv)

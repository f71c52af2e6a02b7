"""
pytest fixtures for the POK simulator, registered for the whole suite by the root ``conftest.py``.

One server per test session keeps the suite fast (binding and thread start-up happen once); each test gets it through
``pok_simulator`` freshly reset, so data, faults, counters and modes never leak from one test into the next.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from openedx_pok.testing.pok_simulator import PokSimulator


@pytest.fixture(scope="session")
def pok_simulator_server() -> Iterator[PokSimulator]:
    """The running simulator for the session; prefer ``pok_simulator``, which also resets it."""
    with PokSimulator() as simulator:
        yield simulator


@pytest.fixture
def pok_simulator(pok_simulator_server: PokSimulator) -> PokSimulator:
    """The session's simulator, reset to its defaults (sync emission, default org, templates and pages, no faults)."""
    pok_simulator_server.reset()
    return pok_simulator_server

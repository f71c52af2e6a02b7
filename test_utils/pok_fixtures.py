"""
pytest fixtures for the POK simulator, registered for the whole suite by the root ``conftest.py``.

An autouse fixture gives every test a process without the plugin's in-process copies. One server per test session
keeps the suite fast (binding and thread start-up happen once); each test gets it through
``pok_simulator`` freshly reset, so data, faults, counters and modes never leak from one test into the next.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from openedx_pok.course_setup import configuration
from pok_simulator import PokSimulator


@pytest.fixture(autouse=True)
def _pok_fresh_process_state():
    """
    Each test starts without the plugin's in-process copies (mappings, course facts): a test's database is rolled
    back without the signals that would make a real process forget them.
    """

    configuration.reset_clients()
    yield


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

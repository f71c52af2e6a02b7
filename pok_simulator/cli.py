"""
The command line: ``python -m pok_simulator`` serves a simulator until Ctrl-C or SIGTERM.

Used by the demo sandbox, manual testing and benchmarks; it prints where it listens and which key it accepts (the
built-in key is a fixed test value, not a secret).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from .constants import DEFAULT_API_KEY, DEFAULT_CLI_PORT, DEFAULT_HOST
from .simulator import PokSimulator


def _say(text: str, stream: TextIO | None = None) -> None:
    """The one place the command line talks to its operator."""
    print(text, file=stream or sys.stdout, flush=True)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a simulator until Ctrl-C or SIGTERM, for the demo sandbox, manual testing and benchmarks."""
    parser = argparse.ArgumentParser(
        prog="python -m pok_simulator",
        description="Run a local simulator of the POK (pok.tech) credentials API.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=_non_negative_int, default=DEFAULT_CLI_PORT,
                        help="port to listen on, 0 for any free port (default: %(default)s)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key to accept (default: the built-in key)")
    parser.add_argument("--async-polls", type=_non_negative_int, default=None, metavar="N",
                        help="emit asynchronously: a credential is emitted on its N-th GET (default: synchronous)")
    parser.add_argument("--latency-ms", type=_non_negative_float, default=0.0, metavar="N",
                        help="milliseconds added to every request (default: 0)")
    args = parser.parse_args(argv)

    simulator = PokSimulator(api_key=args.api_key, port=args.port, host=args.host)
    if args.async_polls is not None:
        simulator.emission_mode = "async"
        simulator.polls_until_emitted = args.async_polls
    simulator.latency = args.latency_ms / 1000.0
    try:
        simulator.start()
    except OSError as exc:
        _say(f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", sys.stderr)
        return 1

    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop_requested.set())
    _say(f"POK simulator listening on {simulator.url}")
    _say(f"API key: {simulator.api_key}")
    _say("Press Ctrl-C to stop.")
    try:
        while not stop_requested.wait(0.5):
            continue
    except KeyboardInterrupt:
        _say("Stopping the POK simulator.")
    finally:
        simulator.stop()
    return 0

"""
Benchmarks of openedx-pok: what the plugin costs the LMS, what it costs POK, and what a certificate view costs.

Run with ``make bench`` (or ``python -m bench.run``); see ``docs/benchmarks.rst`` for what each number means.
"""

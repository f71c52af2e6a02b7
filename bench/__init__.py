"""
Benchmarks of openedx-pok: what the plugin costs the LMS, what it costs POK, what a certificate view costs, and how
the credential admin holds up at 100,000 credentials on MariaDB.

Run with ``make bench`` (``python -m bench.run``, then ``python -m bench.mysql``); see ``docs/benchmarks.rst`` for
what each number means. ``bench.data`` builds the MariaDB load data, ``bench.admin_pages`` measures the admin list,
``bench.db`` holds the MariaDB driver and server helpers, ``bench.legacy_import`` times the upgrade import.
"""

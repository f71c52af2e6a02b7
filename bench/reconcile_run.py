"""
The reconcile run at scale, for ``bench.mysql``: what one run of ``openedx_pok.tasks.reconcile_credentials`` costs
with 10,000 and with 100,000 credentials in the table.

The load data (``bench.data``) has rows of every kind a reconcile run handles: pending, in progress (polled on POK),
retryable failures. Before the timed runs, inside a savepoint, :data:`ABANDONED` pending rows become requests
abandoned mid-POST (``requesting``, last touched an hour ago; half of them already resent once, so they go to
staff), and the retryable failures' backoff is made due. Each timed run is ``api.reconcile()`` (what the periodic
task calls, default batch ``POK_SYNC_BATCH_SIZE``) in a savepoint of its own that is rolled back, so every run sees
the same rows and the load data is left as it was for the other measurements and the next size.

The publish to the broker is recorded instead of sent (``tasks._publish``): the figure is the messages and the rows
they carry. Measured per run: the statements (savepoints left out: the periodic task runs in autocommit, where the
writes take none), their summed time, the InnoDB rows read, the wall time, and each ``SELECT``'s plan. The baseline
is the smallest size of the same run: a reconcile run must cost the same whatever the number of settled
credentials beside the batch.
"""
import statistics
import time
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bench.admin_pages import StatementTimer, _explain, _handler_reads, _ms
from openedx_pok import api, tasks
from openedx_pok.models import CredentialStatus, PokCertificate

ABANDONED = 40
SAVEPOINT_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@contextmanager
def rolled_back():
    """A savepoint that is always rolled back: what happens inside leaves no trace in the database."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def make_work():
    """Abandoned requests and due retryable failures beside the load data's pending and in-progress rows."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    pending = list(PokCertificate.objects.filter(status=CredentialStatus.PENDING)
                   .order_by("-id").values_list("id", flat=True)[:ABANDONED])
    PokCertificate.objects.filter(id__in=pending[: ABANDONED // 2]).update(
        status=CredentialStatus.REQUESTING, modified=an_hour_ago, ambiguous_attempts=0)
    PokCertificate.objects.filter(id__in=pending[ABANDONED // 2:]).update(
        status=CredentialStatus.REQUESTING, modified=an_hour_ago, ambiguous_attempts=1)
    PokCertificate.objects.filter(status=CredentialStatus.FAILED, retryable=True).update(not_before=None)
    return len(pending)


def _one_run():
    """One reconcile run, rolled back; returns its figures."""
    published = []

    def record(task, argument, _kwargs, _countdown=0):
        published.append((task.name, len(argument)))

    timer = StatementTimer()
    with rolled_back(), mock.patch.object(tasks, "_publish", record):
        reads = _handler_reads()
        started = time.perf_counter_ns()
        with connection.execute_wrapper(timer):
            counts = api.reconcile()
        wall = time.perf_counter_ns() - started
        rows_read = _handler_reads() - reads
    statements = [(sql, params, ns) for sql, params, ns in timer.statements
                  if not sql.lstrip().upper().startswith(SAVEPOINT_STATEMENTS)]
    return {"counts": counts, "wall_ns": wall, "sql_ns": sum(ns for _sql, _params, ns in statements),
            "rows_read": rows_read, "statements": statements, "published": published}


def measure_reconcile(size, repeats):
    """Median figures of ``repeats`` reconcile runs (after one untimed) over the load data of ``size`` rows."""
    with rolled_back():
        abandoned = make_work()
        _one_run()  # warm: the buffer pool and Python's imports
        runs = [_one_run() for _ in range(repeats)]
        first = runs[0]
        plans = [{"sql": sql, "ms": _ms(ns), "explain": _explain(sql, params)}
                 for sql, params, ns in first["statements"]]
    published = first["published"]
    if any(len(run["statements"]) != len(first["statements"]) for run in runs):
        raise RuntimeError("reconcile: the statements of one run differ from the next over the same rows")
    return {
        "size": size, "abandoned_made": abandoned, "batch_size": settings.POK_SYNC_BATCH_SIZE,
        "counts": first["counts"],
        "statements": len(first["statements"]),
        "updates": sum(sql.lstrip().upper().startswith("UPDATE") for sql, _p, _ns in first["statements"]),
        "sql_median_ms": _ms(statistics.median(run["sql_ns"] for run in runs)),
        "wall_median_ms": _ms(statistics.median(run["wall_ns"] for run in runs)),
        "rows_read": first["rows_read"],
        "messages": len(published),
        "rows_published": sum(rows for _name, rows in published),
        "filesorts": sum("filesort" in (step.get("Extra") or "") for plan in plans for step in plan["explain"]),
        "sql": plans,
    }

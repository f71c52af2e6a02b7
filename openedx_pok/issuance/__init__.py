"""
The credential's life: its statuses and their one compare-and-set (``states``), the history every status change
writes (``history``), the analytics events (``events``), the state machine that claims, sends and stores
(``machine``), POK's remembered answers (``answers``), an account's pause during a POK outage (``outage``), the
reconcile run (``reconcile``), the backfill (``backfill``), the CSV report (``report``), learner retirement
(``retirement``) and the staff actions (``staff``).

Nothing here enqueues a task: "try again later" is ``RetryLater``, which ``openedx_pok.tasks`` turns into Celery's
retry.
"""

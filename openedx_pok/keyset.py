"""
Reading a large table a page at a time, by ascending id: the keyset walk both the backfill (the LMS's certificates)
and the CSV report (the credentials) use.

``id > last id ORDER BY id LIMIT size``: never OFFSET (a deep page would read every row before it) and never the
whole result at once (the MySQL drivers buffer a whole result set, so Django's ``iterator()`` does not stream there).
Memory is one page whatever the number of rows, and each page is a short, indexed query.
"""


def keyset_pages(queryset, size, after_id=0, id_of=lambda row: row["id"]):
    """The rows of ``queryset`` (a ``values()`` or ``values_list()`` queryset including the id), a page at a time."""
    queryset = queryset.order_by("id")
    while page := list(queryset.filter(id__gt=after_id)[:size]):
        after_id, full = id_of(page[-1]), len(page) == size
        yield page
        # Dropped before the next page is read: one page in memory at a time, not two.
        del page
        if not full:
            return

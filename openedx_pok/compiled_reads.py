"""
Reads the issuance worker runs for every message, compiled by the ORM once per shape instead of at every call.

A message's credential rows, their learners, certificates and language preferences are read with three
``values_list()`` querysets. Compiling a queryset to SQL cost the worker more CPU than running it (0.8 of 1 ms for
five rows), and their SQL only differs by the ids asked for. So :class:`CompiledRead` lets the ORM compile each
queryset once per database and number of ids, from stand-in values, and then runs that SQL with the real values
in the stand-ins' places and the ORM's own converters on the results: the same statement, managers and lookups
as the queryset itself, minus the compiling.
"""
from functools import lru_cache

from django.db import connections, router


class CompiledRead:
    """
    ``read(*value_lists)``: the rows (tuples) of ``build(*value_lists)``, a ``values_list()`` queryset of ``model``
    whose only varying parameters are the items of the lists (``__in`` lookups).

    ``stand_ins``: for each list, a function ``n -> value`` giving the n-th stand-in item; it must give values no
    other parameter of the query can equal (e.g. negative ids), as the items take their places by equality.
    """

    def __init__(self, model, build, stand_ins):
        self.model, self.build, self.stand_ins = model, build, stand_ins
        self.compiled = lru_cache(maxsize=64)(self._compile)

    def _compile(self, alias, _vendor, sizes):
        stand_ins = [[make(n) for n in range(size)] for make, size in zip(self.stand_ins, sizes, strict=True)]
        compiler = self.build(*stand_ins).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        converters = compiler.get_converters([column for column, _sql, _alias in compiler.select[:compiler.col_count]])
        # Each stand-in, as the ORM writes it into the parameters -> (list, position) of the item it stands for.
        places = {self._as_parameter(item): (index, position)
                  for index, items in enumerate(stand_ins) for position, item in enumerate(items)}
        slots = [places.get(param) if isinstance(param, int | str) else None for param in params]
        if sum(slot is not None for slot in slots) != sum(sizes):
            raise ValueError(f"{self.model.__name__}: a stand-in is not among the query's parameters as written")
        return sql, tuple(params), tuple(slots), compiler, converters

    @staticmethod
    def _as_parameter(item):
        return item if isinstance(item, int) else str(item)

    def __call__(self, *value_lists):
        # As parameters, each once (as ``__in`` writes them).
        value_lists = [list(dict.fromkeys(map(self._as_parameter, items))) for items in value_lists]
        if not all(value_lists):
            return []
        alias = router.db_for_read(self.model)
        sql, params, slots, compiler, converters = self.compiled(alias, connections[alias].vendor,
                                                                 tuple(len(items) for items in value_lists))
        params = [param if slot is None else value_lists[slot[0]][slot[1]]
                  for param, slot in zip(params, slots, strict=True)]
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [tuple(row) for row in compiler.apply_converters(rows, converters)] if converters else list(rows)

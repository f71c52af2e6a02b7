"""
The switch in place from the earlier openedx-pok (21.x/22.x): its tables imported by the data migration and
``pok_import_legacy`` (``importer``; what a run did: ``report``). Its pipeline step paths stay at
``openedx_pok.filters``, where operators configured them.
"""

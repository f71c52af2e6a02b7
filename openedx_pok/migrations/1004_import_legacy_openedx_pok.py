"""
Import the data of the earlier openedx-pok (PyPI 21.x / 22.0.0) that ran under the same app label: its course
templates become course mappings, its credentials this plugin's credential rows (docs/decisions/0006-legacy-import.rst).

A no-op on a fresh install (the legacy tables do not exist) and on a second run (what is there is not written
again). The legacy tables are only read, so the reverse is a no-op too: the earlier plugin finds its data untouched.
``manage.py lms pok_import_legacy`` runs the same import on demand.
"""
from django.db import migrations

from openedx_pok.course_setup.configuration import forget_mappings
from openedx_pok.legacy.importer import import_legacy


def forward(apps, schema_editor):
    """Run the shared import with the historical models of this point of the migration graph."""
    import_legacy(
        apps.get_model("openedx_pok", "CertificateTemplate"),
        apps.get_model("openedx_pok", "PokCertificate"),
        using=schema_editor.connection.alias,
    )
    forget_mappings()  # the new mappings were bulk-inserted (no post_save): a cached copy must not hide them


class Migration(migrations.Migration):

    # Each batch of 2,000 legacy rows commits on its own: a long import does not hold one huge transaction, and an
    # interrupted one resumes where it stopped on the next migrate.
    atomic = False

    dependencies = [
        ("openedx_pok", "1003_credential_reliability"),
    ]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop, elidable=False),
    ]

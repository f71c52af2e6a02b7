"""
Named like the LMS migration that openedx-pok 21.x depends on (0002, 0009, 0012); the LMS's 0002-0028 change
nothing the earlier plugin uses, so this stub goes from 0001 straight here and changes nothing.
"""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("course_overviews", "0001_initial")]

    operations = []

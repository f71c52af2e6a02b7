"""The course overview table, reduced to the columns the earlier openedx-pok's rows reference."""
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="CourseOverview",
            fields=[
                ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("display_name", models.TextField(null=True)),
            ],
        ),
    ]

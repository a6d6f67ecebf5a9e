from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="CachePanel",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ],
            options={
                "verbose_name": "cache panel",
                "verbose_name_plural": "cache panel",
                "permissions": [
                    ("view_cache", "Can inspect the cache (keys, values, statistics)"),
                    ("manage_cache", "Can change the cache (delete, flush, TTLs, switches)"),
                ],
                "managed": False,
                "default_permissions": (),
            },
        ),
    ]


from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('documents', '0008_section_aware_chunks'),
    ]

    operations = [
        migrations.AlterField(
            model_name='chunk',
            name='content_hash',
            field=models.CharField(help_text='SHA-256 of what is embedded: section label and text.', max_length=64),
        ),
    ]

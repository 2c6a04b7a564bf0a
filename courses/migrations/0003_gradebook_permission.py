from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0002_table_names_and_ranked_by"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="challenge",
            options={
                "ordering": ["deadline", "title"],
                "permissions": [
                    (
                        "view_gradebook",
                        "Can see grade books, pass lists and staff reports of every course",
                    )
                ],
            },
        ),
    ]

import hashlib

from django.db import migrations, models


def hash_keys(apps, schema_editor):
    # Every existing token keeps working: its key is replaced by the key's digest, and it is
    # bound to its user's password as it is now. The same hashing as submissions.models'
    # token_digest and password_fingerprint, copied so this stays what it was when written.
    ApiToken = apps.get_model("submissions", "ApiToken")
    for token in ApiToken.objects.select_related("user").iterator():
        key = token.digest
        token.prefix = key[:8]
        token.digest = hashlib.sha256(key.encode()).hexdigest()
        token.password_fingerprint = hashlib.sha256(
            f"api-token-password:{token.user.password}".encode()
        ).hexdigest()
        token.save(update_fields=["prefix", "digest", "password_fingerprint"])


def drop_tokens(apps, schema_editor):
    # A digest cannot be turned back into its key, and the code before this migration would
    # take a digest for a key (and show it as one): students make new tokens instead.
    apps.get_model("submissions", "ApiToken").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("submissions", "0010_submission_selected"),
    ]

    # Schema first, rows last: PostgreSQL refuses to alter a table with updates pending in the
    # same transaction.
    operations = [
        migrations.RenameField(model_name="apitoken", old_name="key", new_name="digest"),
        migrations.AlterField(
            model_name="apitoken",
            name="digest",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="prefix",
            field=models.CharField(default="", max_length=8),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="password_fingerprint",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(hash_keys, drop_tokens),
    ]

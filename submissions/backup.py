"""Backups: one consistent snapshot of the database, and a manifest of the stored objects it
points at, with their checksums; and bringing both back into an empty database.

The database is dumped with the server's own tool (``pg_dump``, custom format) or SQLite's
backup API. The manifest lists what the snapshot references (uploads, pictures) as read in that
same snapshot, so an upload committed during the backup is in both or in neither. The objects
themselves stay in the store (a bucket with versioning, or the media folder's own backup); the
manifest says which must be there and what they must hash to, and ``restore`` checks them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from submissions.models import Submission

FORMAT = 1
MANIFEST = "manifest.json"
PG_DUMP = "database.pgdump"
SQLITE_DUMP = "database.sqlite3"
CHUNK = 1024 * 1024

Say = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


@dataclass
class Restored:
    objects: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stored_digest(name: str) -> tuple[str, int]:
    """The sha256 and size of a stored object, streamed."""
    digest = hashlib.sha256()
    size = 0
    with default_storage.open(name, "rb") as fh:
        for chunk in fh.chunks(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def referenced_objects(rows: Iterable[tuple[str, Any]]) -> list[str]:
    """Storage names in (file, pictures) rows of the submissions table."""
    names: set[str] = set()
    for file, pictures in rows:
        if file:
            names.add(file)
        if isinstance(pictures, str):
            pictures = json.loads(pictures or "{}")
        for name in (pictures or {}).values():
            if isinstance(name, str) and name:
                names.add(name)
    return sorted(names)


# --- backing up -------------------------------------------------------------------------------


def backup(target: Path, say: Say) -> dict[str, Any]:
    """Write the snapshot and its manifest into ``target`` (created; must be empty)."""
    # The dump holds password hashes and API token digests: readable by its owner only.
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise BackupError(f"{target} is not empty: a backup goes into a folder of its own")
    target.chmod(0o700)
    if connection.vendor == "postgresql":
        dump, names = _dump_postgres(target / PG_DUMP, say)
    elif connection.vendor == "sqlite":
        dump, names = _dump_sqlite(target / SQLITE_DUMP, say)
    else:
        raise BackupError(f"no backup for the {connection.vendor} database")
    say(f"database: {dump.name}, {dump.stat().st_size} bytes")
    objects = []
    for i, name in enumerate(names, 1):
        if not default_storage.exists(name):
            raise BackupError(f"the stored object {name!r} is missing from the store")
        sha256, size = stored_digest(name)
        objects.append({"name": name, "sha256": sha256, "size": size})
        if i % 100 == 0 or i == len(names):
            say(f"objects: {i}/{len(names)} checksummed")
    manifest = {
        "format": FORMAT,
        "created_at": timezone.now().isoformat(),
        "engine": connection.vendor,
        "database": {"file": dump.name, "sha256": sha256_file(dump)},
        "objects": objects,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    for path in (dump, target / MANIFEST):
        path.chmod(0o600)
    say(f"manifest: {len(objects)} object(s)")
    return manifest


def _pg_env() -> tuple[list[str], dict[str, str]]:
    """libpq's connection options for this database, as arguments and environment."""
    db = connection.settings_dict
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    args = [
        f"--host={db.get('HOST') or '127.0.0.1'}",
        f"--port={db.get('PORT') or 5432}",
        f"--username={db.get('USER') or 'postgres'}",
    ]
    return args, env


def _dump_postgres(path: Path, say: Say) -> tuple[Path, list[str]]:
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed (Debian: apt-get install postgresql-client)")
    args, env = _pg_env()
    with transaction.atomic(), connection.cursor() as cursor:
        # One snapshot for the dump and the manifest: pg_dump joins this transaction's view.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        say(f"database: pg_dump of {connection.settings_dict['NAME']} (snapshot {snapshot})")
        done = subprocess.run(
            [
                "pg_dump",
                *args,
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={path}",
                str(connection.settings_dict["NAME"]),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
        names = referenced_objects(Submission.objects.values_list("file", "pictures"))
    return path, names


def _dump_sqlite(path: Path, say: Say) -> tuple[Path, list[str]]:
    say(f"database: SQLite backup of {connection.settings_dict['NAME']}")
    connection.ensure_connection()
    target = sqlite3.connect(path)
    try:
        connection.connection.backup(target)
        # Read the manifest from the copy: it is the snapshot, whatever happened since.
        table = Submission._meta.db_table
        rows = target.execute(f'SELECT file, pictures FROM "{table}"').fetchall()
    finally:
        target.close()
    return path, referenced_objects(rows)


# --- restoring --------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} has no {MANIFEST}: not a backup") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: unknown backup format {manifest.get('format')!r}")
    return manifest


def restore(source: Path, say: Say, *, check_objects: bool = True) -> Restored:
    """Load the snapshot in ``source`` into this (empty) database, then check the objects."""
    manifest = read_manifest(source)
    if manifest["engine"] != connection.vendor:
        raise BackupError(
            f"the backup is of a {manifest['engine']} database; this one is {connection.vendor}"
        )
    dump = source / manifest["database"]["file"]
    if sha256_file(dump) != manifest["database"]["sha256"]:
        raise BackupError(f"{dump} does not match its checksum in the manifest")
    tables = connection.introspection.table_names()
    if tables:
        raise BackupError(
            f"the database {connection.settings_dict['NAME']} is not empty ({len(tables)}"
            " tables): restore into a new, empty one"
        )
    if connection.vendor == "postgresql":
        _load_postgres(dump, say)
    else:
        _load_sqlite(dump, say)
    restored = Restored()
    if check_objects:
        _check_objects(manifest["objects"], restored, say)
    return restored


def _load_postgres(dump: Path, say: Say) -> None:
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore is not installed (Debian: apt-get install postgresql-client)")
    args, env = _pg_env()
    name = str(connection.settings_dict["NAME"])
    say(f"database: pg_restore into {name}")
    connection.close()
    done = subprocess.run(
        [
            "pg_restore",
            *args,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={name}",
            str(dump),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")


def _load_sqlite(dump: Path, say: Say) -> None:
    say(f"database: SQLite restore into {connection.settings_dict['NAME']}")
    connection.ensure_connection()
    source = sqlite3.connect(dump)
    try:
        source.backup(connection.connection)
    finally:
        source.close()


def _check_objects(objects: list[dict[str, Any]], restored: Restored, say: Say) -> None:
    for i, entry in enumerate(objects, 1):
        if not default_storage.exists(entry["name"]):
            restored.missing.append(entry["name"])
        elif stored_digest(entry["name"])[0] != entry["sha256"]:
            restored.changed.append(entry["name"])
        restored.objects = i
        if i % 100 == 0 or i == len(objects):
            say(f"objects: {i}/{len(objects)} checked")

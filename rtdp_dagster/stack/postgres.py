"""The cluster profile's PostgreSQL: initialised and run under the run folder, bound to the stack's host.

It holds Dagster's instance storage (runs, events, schedules) and the collection state, one
database each. The password comes from configuration (``RTDP_POSTGRES__PASSWORD``) and is set at
initdb; clients of the stack read it from the environment (Dagster) or from a libpq password file
the stack writes (the collection state's URL), so it never appears in a URL or a command line.

``postgres`` runs in the foreground as the stack's process (``pg_ctl start`` would detach it into
a session of its own, out of reach of the stack's pid file and process group); stopping sends
SIGINT, PostgreSQL's fast shutdown, which is what ``pg_ctl stop -m fast`` sends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from rtdp_dagster.config import Settings
from rtdp_dagster.config.stack_profile import PASSWORD_ENV, postgres_passfile
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.process import ServiceSpec, port_in_use, run_as

SERVICE = "postgres"


def _os_user(settings: Settings) -> str | None:
    """Who runs PostgreSQL: this user, or a system user when this is root (PostgreSQL refuses root)."""
    return settings.stack.postgres.os_user_if_root if os.geteuid() == 0 else None


def _find_binary(settings: Settings, name: str) -> str | None:
    configured = settings.stack.postgres.binaries
    if configured:
        path = Path(configured) / name
        return str(path) if path.exists() else None
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server programs off PATH, one folder per major version.
    versions = [folder for folder in Path("/usr/lib/postgresql").glob("*/bin") if folder.parent.name.isdigit()]
    for folder in sorted(versions, key=lambda folder: int(folder.parent.name), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    return None


def binary(settings: Settings, name: str) -> str:
    """initdb or postgres: from stack.postgres.binaries, PATH, or the newest Debian install."""
    found = _find_binary(settings, name)
    if found is None:
        raise StackError(
            f"{SERVICE}: {name} not found; install PostgreSQL (apt-get install postgresql) "
            "or set stack.postgres.binaries"
        )
    return found


def _require_reachable(folder: Path, user: str) -> None:
    """The system user must be able to walk down to the run folder (a root-only 0700 parent, such as
    a root temporary folder, would fail initdb with a bare "permission denied")."""
    account = pwd.getpwnam(user)
    for ancestor in [folder, *folder.parents]:
        info = ancestor.stat()
        if info.st_uid == account.pw_uid:
            continue
        allowed = stat.S_IXGRP if info.st_gid == account.pw_gid else stat.S_IXOTH
        if not info.st_mode & allowed:
            raise StackError(
                f"{SERVICE}: system user {user!r} cannot reach {folder}: {ancestor} is mode "
                f"{stat.S_IMODE(info.st_mode):04o}; run the stack as a non-root user or use a run folder "
                "others may traverse (o+x)"
            )


def _password(settings: Settings) -> str:
    secret = settings.postgres.password
    if secret is None:
        raise StackError(f"{SERVICE}: no password; set {PASSWORD_ENV}")
    return secret.get_secret_value()


def _pgpass_line(settings: Settings) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    postgres = settings.postgres
    fields = [postgres.host, str(postgres.port), "*", postgres.user, _password(settings)]
    return ":".join(escape(field) for field in fields) + "\n"


def write_passfile(settings: Settings) -> Path:
    """The libpq password file the collection state's URL names (owner-only, or libpq ignores it)."""
    path = postgres_passfile(settings.run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(_pgpass_line(settings))
    return path


def _initdb(settings: Settings, data_dir: Path, user: str | None) -> None:
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    password_file = data_dir.parent / ".initdb-password"
    password_file.touch(mode=0o600, exist_ok=True)
    password_file.chmod(0o600)
    try:
        password_file.write_text(_password(settings) + "\n")
        if user is not None:
            account = pwd.getpwnam(user)
            for path in (data_dir, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        data_dir.chmod(0o700)
        command = [
            binary(settings, "initdb"),
            "-D",
            str(data_dir),
            "-U",
            settings.postgres.user,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=data_dir,
            **run_as(user),
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        # A half-initialised folder would make the next start skip initdb.
        shutil.rmtree(data_dir, ignore_errors=True)
        raise StackError(f"{SERVICE}: initdb failed: {lines[-1] if lines else result.returncode}")


def _connect(settings: Settings, database: str):
    import psycopg2

    postgres = settings.postgres
    return psycopg2.connect(
        host=postgres.host,
        port=postgres.port,
        user=postgres.user,
        password=_password(settings),
        dbname=database,
        connect_timeout=3,
    )


def ensure_databases(settings: Settings) -> list[str]:
    """Create the Dagster and collection databases that do not exist yet; returns those created."""
    from psycopg2 import sql

    postgres = settings.postgres
    created = []
    connection = _connect(settings, "postgres")
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            for name in (postgres.dagster_database, postgres.collection_database):
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    created.append(name)
    finally:
        connection.close()
    return created


def postgres_spec(settings: Settings) -> ServiceSpec:
    host, port = settings.stack.bind_host, settings.stack.postgres.port
    config = settings.stack.postgres
    folder = settings.run_dir / SERVICE
    data_dir = folder / "data"
    user = _os_user(settings)

    def prepare() -> None:
        binary(settings, "postgres")
        if user is not None:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise StackError(
                    f"{SERVICE}: system user {user!r} not found (stack.postgres.os_user_if_root); "
                    "PostgreSQL does not run as root"
                ) from None
        folder.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _require_reachable(folder, user)
        _initdb(settings, data_dir, user)
        write_passfile(settings)

    def health() -> bool:
        if not port_in_use(host, port):
            return False
        connection = _connect(settings, "postgres")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        finally:
            connection.close()

    def when_healthy() -> str | None:
        created = ensure_databases(settings)
        return f"{SERVICE}: created databases {', '.join(created)}" if created else None

    command = [
        _find_binary(settings, "postgres") or "postgres",
        "-D",
        str(data_dir),
        "-c",
        f"listen_addresses={host}",
        "-c",
        f"port={port}",
        # TCP only: the default socket folder (/var/run/postgresql) is not the stack's.
        "-c",
        "unix_socket_directories=",
        "-c",
        f"shared_buffers={config.shared_buffers}",
        "-c",
        f"max_connections={config.max_connections}",
    ]
    return ServiceSpec(
        name=SERVICE,
        command=command,
        host=host,
        ports=[port],
        health=health,
        cwd=folder,
        prepare=prepare,
        when_healthy=when_healthy,
        stop_signal=signal.SIGINT,
        # The postmaster stops its own backends; SIGINT to each of them would only cancel queries.
        signal_group_on_stop=False,
        user=user,
    )


def server_version(settings: Settings) -> str:
    """The running server's version string (for status and tests)."""
    connection = _connect(settings, "postgres")
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        row = cursor.fetchone()
    return str(row[0]) if row else ""

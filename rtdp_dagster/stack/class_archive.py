"""A class-data-sharing archive of the Spark driver's classes, made once at setup time.

Every Spark driver of the platform (the stream, the Spark Connect server) loads and verifies the same
tens of thousands of classes of Spark and Delta before its first query: about 10 s of CPU per start
on this machine, paid again at every restart of the stream. The JVM can map those classes from an
archive instead (CDS, `-XX:SharedArchiveFile`). `rtdp setup` makes the archive with a short training
run of a driver (a session, a Delta table created, written, described and read); drivers then start
with it when it matches the JDK, pyspark and the platform's jars it was made from. `-Xshare:auto`: a
JVM that cannot map it (another JDK build) starts as it would have without it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.jars import pyspark_jars_dir, spark_jar_paths
from rtdp_dagster.stack.spark_conf import classic_driver_env

ARCHIVE = "spark-driver.jsa"
_DIGEST = "spark-driver.digest"
_TRAINING_TIMEOUT_S = 600


def _java() -> Path | None:
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found else None


def archive_digest(settings: Settings) -> str:
    """What an archive is valid for: the JVM binary, and the name, size and time of every jar a driver loads."""
    java = _java()
    digest = hashlib.sha256(f"{java}:{java.stat().st_mtime_ns if java else ''}".encode())
    for jar in sorted(pyspark_jars_dir().glob("*.jar")) + spark_jar_paths(settings.jars_dir):
        stat = jar.stat()
        digest.update(f"\0{jar}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _folder(settings: Settings) -> Path:
    return settings.jars_dir / "class-archive"


def _current_archive(settings: Settings, digest: str | None = None) -> Path | None:
    """The archive when it is there and was made from what a driver loads now."""
    folder = _folder(settings)
    archive, marker = folder / ARCHIVE, folder / _DIGEST
    if not archive.exists() or not marker.exists():
        return None
    return archive if marker.read_text() == (digest or archive_digest(settings)) else None


def driver_java_options(settings: Settings) -> str:
    """JVM options for a Spark driver: the archive when it is there and up to date, else none."""
    archive = _current_archive(settings)
    return f"-XX:SharedArchiveFile={archive} -Xshare:auto" if archive else ""


def with_driver_archive(conf: dict[str, str], settings: Settings) -> dict[str, str]:
    """conf with the archive's options before any driver options it already has."""
    options = driver_java_options(settings)
    if not options:
        return conf
    key = "spark.driver.extraJavaOptions"
    return {**conf, key: f"{options} {conf[key]}" if conf.get(key) else options}


def ensure_archive(settings: Settings, log: Callable[[str], None] = print) -> Path | None:
    """Make the archive unless an up-to-date one is there; None when no JVM is installed."""
    if _java() is None:
        return None
    digest = archive_digest(settings)
    if (current := _current_archive(settings, digest)) is not None:
        return current
    folder = _folder(settings)
    archive, marker = folder / ARCHIVE, folder / _DIGEST
    log(f"making the Spark driver's class archive {archive} (a short training run) ...")
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".{ARCHIVE}.staging"
    staging.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtdp-class-archive-") as run_dir:
        env = classic_driver_env(os.environ)
        training = "rtdp_dagster.stack.class_archive_training"
        command = [sys.executable, "-m", training, str(staging), run_dir, str(settings.jars_dir)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=_TRAINING_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise StackError(f"class archive: the training run took over {_TRAINING_TIMEOUT_S} s") from None
    if done.returncode != 0 or not staging.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise StackError(f"class archive: the training run failed (exit {done.returncode}): {' | '.join(tail)}")
    staging.replace(archive)
    marker.write_text(digest)
    return archive

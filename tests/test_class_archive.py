"""The Spark driver's class archive: made by `rtdp setup`, used by every driver while it matches what it
was made from, and one that a driver JVM can really map."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings
from rtdp_dagster.stack import class_archive
from rtdp_dagster.stack.class_archive import driver_java_options, ensure_archive, with_driver_archive
from rtdp_dagster.stack.spark_conf import classic_driver_env


def _settings_with_archive(tmp_path: Path) -> Settings:
    """Settings whose jars folder holds one (pretend) platform jar and an archive made for it."""
    jars = tmp_path / "jars"
    (jars / "spark").mkdir(parents=True)
    (jars / "spark" / "delta-spark.jar").write_bytes(b"jar")
    settings = Settings.model_validate({"run_dir": str(tmp_path / "run"), "jars_dir": str(jars)})
    folder = jars / "class-archive"
    folder.mkdir()
    (folder / class_archive.ARCHIVE).write_bytes(b"archive")
    (folder / "spark-driver.digest").write_text(class_archive.archive_digest(settings))
    return settings


def test_a_driver_starts_with_the_archive_while_it_matches_its_jars(tmp_path: Path) -> None:
    settings = _settings_with_archive(tmp_path)
    archive = settings.jars_dir / "class-archive" / class_archive.ARCHIVE
    assert driver_java_options(settings) == f"-XX:SharedArchiveFile={archive} -Xshare:auto"
    # Before the driver options it already has (the user's come later, and the JVM's last flag wins).
    conf = with_driver_archive({"spark.driver.extraJavaOptions": "-Dmine=1", "x": "y"}, settings)
    assert conf == {"spark.driver.extraJavaOptions": f"-XX:SharedArchiveFile={archive} -Xshare:auto -Dmine=1", "x": "y"}

    (settings.jars_dir / "spark" / "delta-spark.jar").write_bytes(b"another jar")  # jars changed after setup
    assert driver_java_options(settings) == ""
    assert with_driver_archive({"x": "y"}, settings) == {"x": "y"}


def test_no_archive_no_options(tmp_path: Path) -> None:
    settings = Settings.model_validate({"run_dir": str(tmp_path), "jars_dir": str(tmp_path / "jars")})
    assert driver_java_options(settings) == ""


@pytest.mark.skipif(shutil.which("java") is None and "JAVA_HOME" not in os.environ, reason="no JVM")
def test_the_setup_archive_is_mapped_by_a_driver_jvm(settings: Settings) -> None:
    """`-Xshare:on` makes a JVM that cannot map the archive (another JDK, other jars) fail to start,
    where the drivers' `-Xshare:auto` would start without it and lose the gain unnoticed."""
    assert ensure_archive(settings) is not None  # made by `make setup`; a no-op here
    assert driver_java_options(settings)
    script = (
        "import sys\n"
        "from rtdp_dagster.config import Settings\n"
        "from rtdp_dagster.streaming.session import stream_session\n"
        "settings = Settings.model_validate({'run_dir': sys.argv[1], 'jars_dir': sys.argv[2],"
        " 'stream': {'java_options': ['-XX:TieredStopAtLevel=1']},"
        " 'spark': {'conf': {'spark.driver.extraJavaOptions': '-Xshare:on'}}})\n"
        "spark = stream_session(settings)\n"
        "print(spark.range(3).count(), spark.sparkContext.getConf().get('spark.driver.extraJavaOptions'))\n"
    )
    env = classic_driver_env(os.environ)
    command = [sys.executable, "-c", script, str(settings.run_dir / "class-archive-test"), str(settings.jars_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    count, options = done.stdout.strip().splitlines()[-1].split(" ", 1)
    # The archive's options first, then the stream's, then spark.conf's: the last -Xshare wins.
    assert count == "3" and options.endswith("-Xshare:on")
    assert options.index("-XX:SharedArchiveFile=") < options.index("-XX:TieredStopAtLevel=1")

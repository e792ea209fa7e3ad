"""JVM artifacts from Maven Central, resolved once at setup time into the run folder.

Three sets, each described by a pom under ``jvm/``: the Kafka broker (with a Log4j2 binding), the
Spark extras (Kafka connector, Delta), and the platform's own Spark functions (``spark-udf``, built
from its sources here, with their dependencies). Runs only read the resolved folders, so nothing
is downloaded or built when a service or job starts.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from rtdp_dagster.stack.errors import StackError

JVM_DIR = Path(__file__).resolve().parents[2] / "jvm"
MAVEN_SETTINGS = JVM_DIR / "settings.xml"
JAR_SETS = {
    "kafka": JVM_DIR / "kafka-broker" / "pom.xml",
    "spark": JVM_DIR / "spark" / "pom.xml",
    "spark-udf": JVM_DIR / "spark-udf" / "pom.xml",
}
# Sets whose pom builds a jar of the project's own sources (the others only copy dependencies).
BUILT_SETS = {"spark-udf"}
# The sets every Spark of the platform loads (spark.jars).
SPARK_SETS = ("spark", "spark-udf")
_MARKER = ".resolved"
# Provided by other artifacts of the pyspark wheel (jcl-over-slf4j, RoaringBitmap 1.x).
_SPARK_PROVIDES = {"commons-logging", "shims"}


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def _pom_digest(pom: Path) -> str:
    """What a set is resolved from: its pom, the Maven settings, and the sources a built set compiles."""
    digest = hashlib.sha256(pom.read_bytes() + MAVEN_SETTINGS.read_bytes())
    for source in sorted((pom.parent / "src").rglob("*")):
        if source.is_file():
            digest.update(str(source.relative_to(pom.parent)).encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _shipped_by_pyspark(artifact: str, shipped: list[str]) -> bool:
    prefix = artifact + "-"
    return any(name.startswith(prefix) and name[len(prefix) : len(prefix) + 1].isdigit() for name in shipped)


def resolve_jar_set(name: str, jars_root: Path, log: Callable[[str], None] = print) -> Path:
    """Copy one jar set's runtime dependencies into jars_root/name; a no-op when up to date."""
    pom = JAR_SETS[name]
    jars_root = jars_root.resolve()  # Maven resolves relative paths against the pom's folder
    target = jars_root / name
    marker = target / _MARKER
    digest = _pom_digest(pom)
    if marker.exists() and marker.read_text() == digest:
        return target
    if shutil.which("mvn") is None:
        raise StackError(f"jars/{name}: Maven (mvn) is not installed; it is needed once to fetch the jars")
    log(f"resolving {name} jars from Maven Central into {target} ...")
    staging = jars_root / f".{name}.staging"
    build = jars_root / f".{name}.build"  # a built set compiles here, not in the source tree
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(build, ignore_errors=True)
    built = name in BUILT_SETS
    command = [
        "mvn",
        "-q",
        "-B",
        "-s",
        str(MAVEN_SETTINGS),
        "-f",
        str(pom),
        *(["package", f"-Drtdp.build.dir={build}"] if built else []),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
        "-Dmdep.stripVersion=true",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = next((line for line in result.stdout.splitlines() if "[ERROR]" in line), result.stderr.strip())
        raise StackError(f"jars/{name}: Maven could not resolve {pom.relative_to(JVM_DIR.parent)}: {detail[:400]}")
    if built:
        for jar in build.glob("*.jar"):
            shutil.copy2(jar, staging / jar.name)
        shutil.rmtree(build, ignore_errors=True)
    if name in SPARK_SETS:
        # Spark, Hadoop, Jackson etc. already come with the pyspark wheel; a second copy
        # of another version on the classpath breaks Spark at run time.
        shipped = [path.name for path in pyspark_jars_dir().glob("*.jar")]
        for jar in staging.glob("*.jar"):
            if jar.stem in _SPARK_PROVIDES or _shipped_by_pyspark(jar.stem, shipped):
                jar.unlink()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    marker.write_text(digest)
    return target


def resolve_all(jars_root: Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    return {name: resolve_jar_set(name, jars_root, log) for name in JAR_SETS}


def jar_paths(jars_root: Path, name: str) -> list[Path]:
    """The resolved jars of one set (empty until `rtdp setup` has run)."""
    return sorted((jars_root / name).glob("*.jar"))


def spark_jar_paths(jars_root: Path) -> list[Path]:
    """The jars every Spark of the platform loads: the Spark extras and the project's own functions."""
    return [jar for name in SPARK_SETS for jar in jar_paths(jars_root, name)]


def require_jars(jars_root: Path, name: str, service: str) -> None:
    folder = jars_root / name
    if not (folder / _MARKER).exists():
        raise StackError(f"{service}: jars not resolved yet in {folder}; run `rtdp setup` (or `make setup`)")


def require_spark_jars(jars_root: Path, service: str) -> None:
    for name in SPARK_SETS:
        require_jars(jars_root, name, service)

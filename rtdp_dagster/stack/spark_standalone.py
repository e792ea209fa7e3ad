"""The cluster profile's Spark: a standalone master and its workers, started with `spark-class` from
the pyspark distribution, each its own service (a drill can kill one worker and start it again)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import requests

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.process import ServiceSpec

MASTER_SERVICE = "spark-master"
_MASTER_CLASS = "org.apache.spark.deploy.master.Master"
_WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def worker_service(index: int) -> str:
    return f"spark-worker-{index}"


def worker_services(settings: Settings) -> list[str]:
    """The configured workers' service names, in order."""
    return [worker_service(index) for index in range(1, len(settings.stack.spark_standalone.workers) + 1)]


def master_url(settings: Settings) -> str:
    return f"spark://{settings.stack.bind_host}:{settings.stack.spark_standalone.master_port}"


def master_state(settings: Settings) -> dict:
    """The master's own view (workers, applications), from its web UI's JSON."""
    spark, host = settings.stack.spark_standalone, settings.stack.bind_host
    response = requests.get(f"http://{host}:{spark.master_ui_port}/json/", timeout=2)
    response.raise_for_status()
    return response.json()


def _spark_class() -> Path:
    return Path(sys.executable).parent / "spark-class"


def _daemon_env(settings: Settings, folder: Path) -> dict[str, str]:
    env = {
        "SPARK_DAEMON_MEMORY": settings.stack.spark_standalone.daemon_memory,
        "SPARK_LOCAL_IP": settings.stack.bind_host,
        "SPARK_LOG_DIR": str(folder / "logs"),
        # Executors keep shuffle and spill files here, under the run folder.
        "SPARK_LOCAL_DIRS": str(folder / "tmp"),
        # Executors run Python (UDFs, pandas functions) in this project's interpreter.
        "PYSPARK_PYTHON": sys.executable,
    }
    java = shutil.which(settings.stack.java)
    if java is not None:
        # spark-class starts $JAVA_HOME/bin/java: the JDK stack.java names.
        env["JAVA_HOME"] = str(Path(java).resolve().parents[1])
    return env


def _prepare(settings: Settings, service: str, folder: Path, subfolders: tuple[str, ...]) -> None:
    if shutil.which(settings.stack.java) is None:
        raise StackError(f"{service}: java not found ({settings.stack.java!r}); install a JDK 17 or set stack.java")
    if not _spark_class().exists():
        raise StackError(f"{service}: {_spark_class()} not found; the pyspark distribution is incomplete")
    for sub in subfolders:
        (folder / sub).mkdir(parents=True, exist_ok=True)


def master_spec(settings: Settings) -> ServiceSpec:
    spark, host = settings.stack.spark_standalone, settings.stack.bind_host
    folder = settings.run_dir / MASTER_SERVICE

    def health() -> bool:
        return master_state(settings).get("status") == "ALIVE"

    command = [
        str(_spark_class()),
        _MASTER_CLASS,
        "--host",
        host,
        "--port",
        str(spark.master_port),
        "--webui-port",
        str(spark.master_ui_port),
    ]
    return ServiceSpec(
        name=MASTER_SERVICE,
        command=command,
        host=host,
        ports=[spark.master_port, spark.master_ui_port],
        health=health,
        env=_daemon_env(settings, folder),
        cwd=folder,
        prepare=lambda: _prepare(settings, MASTER_SERVICE, folder, ("logs",)),
    )


def worker_specs(settings: Settings) -> list[ServiceSpec]:
    spark, host = settings.stack.spark_standalone, settings.stack.bind_host
    specs = []
    for name, worker in zip(worker_services(settings), spark.workers, strict=True):
        folder = settings.run_dir / name

        def health(port: int = worker.port) -> bool:
            # Healthy once the master counts it: a worker that runs but never registered gets no executors.
            return any(
                entry.get("host") == host and entry.get("port") == port and entry.get("state") == "ALIVE"
                for entry in master_state(settings).get("workers", [])
            )

        command = [
            str(_spark_class()),
            _WORKER_CLASS,
            master_url(settings),
            "--host",
            host,
            "--port",
            str(worker.port),
            "--webui-port",
            str(worker.ui_port),
            "--cores",
            str(spark.worker_cores),
            "--memory",
            spark.worker_memory,
            "--work-dir",
            str(folder / "work"),
        ]
        specs.append(
            ServiceSpec(
                name=name,
                command=command,
                host=host,
                ports=[worker.port, worker.ui_port],
                health=health,
                env=_daemon_env(settings, folder),
                cwd=folder,
                prepare=lambda name=name, folder=folder: _prepare(settings, name, folder, ("logs", "tmp", "work")),
                depends_on=(MASTER_SERVICE,),
            )
        )
    return specs

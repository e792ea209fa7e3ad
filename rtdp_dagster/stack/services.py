"""The local services of the stack, built from configuration: Kafka (KRaft), two
VictoriaMetrics instances (realtime, history) and a Spark Connect server; in the cluster profile
three Kafka nodes, PostgreSQL and a Spark standalone master with workers under Spark Connect."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from rtdp_dagster.config import KafkaNode, Settings, StackProfile, VictoriaMetricsInstance
from rtdp_dagster.config.stack_profile import PASSWORD_ENV
from rtdp_dagster.heartbeat import read_heartbeat, stalled_sources
from rtdp_dagster.stack.class_archive import with_driver_archive
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.jars import jar_paths, require_jars, require_spark_jars
from rtdp_dagster.stack.postgres import postgres_spec
from rtdp_dagster.stack.process import ServiceSpec, port_in_use
from rtdp_dagster.stack.spark_conf import platform_conf
from rtdp_dagster.stack.spark_standalone import MASTER_SERVICE, master_spec, worker_services, worker_specs

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
"""


def kafka_server_properties(settings: Settings, node: KafkaNode, data_dir: Path) -> str:
    """server.properties of one node: every node of the profile is a broker and a KRaft voter."""
    host, kafka = settings.stack.bind_host, settings.stack.kafka
    nodes = settings.stack.kafka_nodes()
    voters = ",".join(f"{other.node_id}@{host}:{other.controller_port}" for other in nodes)
    if settings.stack.clustered:
        replicas, insync = kafka.cluster_replication_factor, kafka.cluster_min_insync_replicas
    else:
        replicas, insync = 1, 1
    lines = [
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{host}:{node.port},CONTROLLER://{host}:{node.controller_port}",
        f"advertised.listeners=PLAINTEXT://{host}:{node.port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data_dir}",
        "num.partitions=3",
        f"offsets.topic.replication.factor={replicas}",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={insync}",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={insync}",
        "group.initial.rebalance.delay.ms=0",
        # Topics come from configuration only; a typo in a topic name must not create one.
        "auto.create.topics.enable=false",
    ]
    if settings.stack.clustered:
        lines += [
            # Topics created without their own settings are replicated like the configured ones.
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={insync}",
            # A replica that missed writes never becomes leader: an outage, never silent loss.
            "unclean.leader.election.enable=false",
        ]
    return "\n".join([*lines, ""])


def _require_java(settings: Settings, service: str) -> None:
    if shutil.which(settings.stack.java) is None:
        raise StackError(f"{service}: java not found ({settings.stack.java!r}); install a JDK 17 or set stack.java")


def kafka_spec(settings: Settings) -> ServiceSpec:
    """The single-node profile's Kafka (the first node of the cluster profile is `kafka-1`)."""
    return kafka_node_spec(settings, settings.stack.kafka_nodes()[0])


def kafka_node_spec(settings: Settings, node: KafkaNode) -> ServiceSpec:
    """One Kafka node, under <run_dir>/<service>; its own start, stop and kill for fault drills."""
    home = settings.run_dir / node.service
    data_dir = home / "data"
    properties = home / "server.properties"
    log4j = home / "log4j2.properties"
    kafka = settings.stack.kafka
    heap = kafka.cluster_node_heap if settings.stack.clustered else kafka.heap
    classpath = ":".join(str(jar) for jar in jar_paths(settings.jars_dir, "kafka"))
    jvm = [
        settings.stack.java,
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath,
    ]

    def prepare() -> None:
        _require_java(settings, node.service)
        require_jars(settings.jars_dir, "kafka", node.service)
        home.mkdir(parents=True, exist_ok=True)
        properties.write_text(kafka_server_properties(settings, node, data_dir))
        log4j.write_text(_LOG4J2)
        if (data_dir / "meta.properties").exists():
            return
        cluster_id = kafka.cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            detail = message[-1] if message else result.returncode
            raise StackError(f"{node.service}: formatting storage failed: {detail}")

    def health() -> bool:
        # The broker answers metadata requests once it has joined the KRaft quorum.
        from kafka import KafkaAdminClient

        if not port_in_use(settings.stack.bind_host, node.port):
            return False
        admin = KafkaAdminClient(
            bootstrap_servers=f"{settings.stack.bind_host}:{node.port}",
            request_timeout_ms=3000,
            client_id="rtdp-health",
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    return ServiceSpec(
        name=node.service,
        command=[*jvm, "kafka.Kafka", str(properties)],
        host=settings.stack.bind_host,
        ports=[node.port, node.controller_port],
        health=health,
        prepare=prepare,
        stop_group="kafka" if settings.stack.clustered else None,
    )


def victoria_metrics_spec(settings: Settings, role: str, instance: VictoriaMetricsInstance) -> ServiceSpec:
    vm, host = settings.stack.victoria_metrics, settings.stack.bind_host
    data_dir = settings.run_dir / f"vm-{role}"

    def prepare() -> None:
        if shutil.which(vm.binary) is None:
            raise StackError(f"vm-{role}: {vm.binary!r} not found; install it with `apt-get install victoria-metrics`")
        data_dir.mkdir(parents=True, exist_ok=True)

    def health() -> bool:
        response = requests.get(f"http://{host}:{instance.http_port}/health", timeout=1)
        return response.ok

    return ServiceSpec(
        name=f"vm-{role}",
        command=[
            vm.binary,
            f"-storageDataPath={data_dir}",
            f"-retentionPeriod={instance.retention}",
            f"-httpListenAddr={host}:{instance.http_port}",
            f"-opentsdbListenAddr={host}:{instance.opentsdb_port}",
            f"-opentsdbHTTPListenAddr={host}:{instance.opentsdb_http_port}",
            f"-search.latencyOffset={vm.latency_offset}",
            # Fresh points must be visible at once; the response cache would hide them.
            "-search.disableCache",
            *_dedup_flags(role),
        ],
        host=host,
        ports=[instance.http_port, instance.opentsdb_port, instance.opentsdb_http_port],
        health=health,
        prepare=prepare,
    )


def _dedup_flags(role: str) -> list[str]:
    """One sample per series and millisecond in the history TSDB: a Spark task run again after its
    executor was lost re-sends the points it had put, and they must be read once (tsdb/history.py).
    Not in the realtime TSDB: its puts come from the stream's driver, and a correction there must win
    by being written later, while deduplication keeps the biggest value of a timestamp."""
    return ["-dedup.minScrapeInterval=1ms"] if role == "history" else []


def spark_connect_conf(settings: Settings) -> dict[str, str]:
    """Server-side Spark configuration: Delta, the Kafka connector, local folders."""
    host = settings.stack.bind_host
    conf = {
        **platform_conf(settings),
        "spark.master": settings.spark.master,
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(settings.stack.spark_connect.port),
        "spark.ui.port": str(settings.stack.spark_connect.ui_port),
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.local.dir": str(settings.run_dir / "spark-tmp"),
    }
    conf.update(settings.spark.conf)
    return with_driver_archive(conf, settings)


def spark_connect_spec(settings: Settings) -> ServiceSpec:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    conf = spark_connect_conf(settings)
    command = [
        str(spark_submit),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--name",
        "rtdp-spark-connect",
    ]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command.append("spark-internal")
    host, port = settings.stack.bind_host, settings.stack.spark_connect.port
    return ServiceSpec(
        name="spark-connect",
        command=command,
        host=host,
        ports=[port],
        health=lambda: port_in_use(host, port),
        # Python work on the server (foreachBatch, UDFs) runs in this project's interpreter.
        env={"PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(settings.log_dir)},
        cwd=settings.run_dir,
        prepare=lambda: _prepare_spark(settings),
        # Attached to the standalone master: started once every worker has registered with it. The
        # master places an application's executors when it arrives, on the workers it knows then;
        # a server that came up first (its classes from the archive) got both on one worker.
        depends_on=_standalone_services(settings),
    )


def _standalone_enabled(settings: Settings) -> bool:
    return settings.stack.clustered and settings.stack.spark_standalone.enabled


def _standalone_services(settings: Settings) -> tuple[str, ...]:
    """The master and its workers, when the profile runs them."""
    if not _standalone_enabled(settings):
        return ()
    return (MASTER_SERVICE, *worker_services(settings))


def _prepare_spark(settings: Settings) -> None:
    _require_java(settings, "spark-connect")
    require_spark_jars(settings.jars_dir, "spark-connect")
    (settings.run_dir / "spark-tmp").mkdir(parents=True, exist_ok=True)


def platform_service_spec(
    settings: Settings, name: str, heartbeat: Path, stale_s: float, progressing: bool = False
) -> ServiceSpec:
    """`rtdp <name>` run by the stack; healthy while its heartbeat file is fresh, and with
    ``progressing`` while it also shows no source stalled (`rtdp ingest`: a window logged lately)."""

    def diagnose() -> str | None:
        beat = read_heartbeat(heartbeat)
        now = time.time()
        if beat is None:
            return "no heartbeat"
        age = now - float(beat.get("at", 0))
        if age >= stale_s:
            return f"heartbeat {age:.0f}s old"
        if beat.get("problem"):
            return str(beat["problem"])
        stalled = stalled_sources(beat, now) if progressing else []
        return f"collection stalled: {'; '.join(stalled)}" if stalled else None

    def health() -> bool:
        return diagnose() is None

    return ServiceSpec(
        name=name,
        command=[sys.executable, "-m", "rtdp_dagster.cli", name],
        host=settings.stack.bind_host,
        ports=[],
        health=health,
        diagnose=diagnose,
        # The service writes its own log file under the run folder; this one keeps its console.
        cwd=Path.cwd(),
        prepare=lambda: heartbeat.unlink(missing_ok=True),
        # Only the Python leader: it stops between micro-batches and writes its last progress rows
        # before its Spark driver exits. SIGTERM to the group also stopped the driver's JVM at once,
        # and the last progress rows of every stop were lost ("Cannot call methods on a stopped
        # SparkContext"). The group still gets SIGKILL once the leader is gone or out of time.
        signal_group_on_stop=False,
    )


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def serve_spec(settings: Settings) -> ServiceSpec:
    """`rtdp serve`, healthy once it answers /api/version."""
    host, port = settings.serve.host, settings.serve.port
    return ServiceSpec(
        name="serve",
        command=[sys.executable, "-m", "rtdp_dagster.cli", "serve"],
        host=host,
        ports=[port],
        health=lambda: _answers(f"http://{host}:{port}/api/version"),
        cwd=Path.cwd(),
    )


def dagster_command(settings: Settings) -> list[str]:
    """`dagster dev` (webserver + daemon) on the rtdp code location."""
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    return [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        str(workspace),
        "-h",
        settings.stack.bind_host,
        "-p",
        str(settings.dagster.webserver_port),
    ]


def dagster_spec(settings: Settings) -> ServiceSpec:
    """The Dagster webserver and daemon, healthy once the webserver answers /server_info."""
    host, port = settings.stack.bind_host, settings.dagster.webserver_port
    env = {"DAGSTER_HOME": str(settings.dagster.home)}
    if settings.stack.clustered and settings.postgres.password is not None:
        # dagster.yaml reads the storage password from this variable, whichever source set it.
        env[PASSWORD_ENV] = settings.postgres.password.get_secret_value()
    return ServiceSpec(
        name="dagster",
        command=dagster_command(settings),
        host=host,
        ports=[port],
        health=lambda: _answers(f"http://{host}:{port}/server_info"),
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        prepare=lambda: _prepare_dagster(settings),
    )


def _prepare_dagster(settings: Settings) -> None:
    from rtdp_dagster.stack.dagster_home import ensure_dagster_home

    ensure_dagster_home(settings)


def _with_profile(settings: Settings, profile: StackProfile, everything: bool) -> Settings:
    """The same settings under another profile, or with every service enabled; unvalidated, so only
    for building specs (what to stop or show), never for connecting."""
    stack = settings.stack.model_copy(deep=True)
    stack.profile = profile
    if everything:
        for service in (
            stack.kafka,
            stack.victoria_metrics.realtime,
            stack.victoria_metrics.history,
            stack.spark_connect,
            stack.spark_standalone,
            stack.postgres,
            stack.stream,
            stack.ingest,
            stack.serve,
            stack.dagster,
        ):
            service.enabled = True
    return settings.model_copy(update={"stack": stack})


def infrastructure_specs(settings: Settings) -> list[ServiceSpec]:
    """The engines of the active profile, in start order."""
    stack = settings.stack
    specs: list[ServiceSpec] = []
    if stack.kafka.enabled:
        specs += [kafka_node_spec(settings, node) for node in stack.kafka_nodes()]
    if stack.clustered and stack.postgres.enabled:
        specs.append(postgres_spec(settings))
    for role, instance in (("realtime", stack.victoria_metrics.realtime), ("history", stack.victoria_metrics.history)):
        if instance.enabled:
            specs.append(victoria_metrics_spec(settings, role, instance))
    if _standalone_enabled(settings):
        specs += [master_spec(settings), *worker_specs(settings)]
    if stack.spark_connect.enabled:
        specs.append(spark_connect_spec(settings))
    return specs


def all_specs(settings: Settings, include_disabled: bool = False) -> list[ServiceSpec]:
    """Every enabled service of the active profile, in start order. With include_disabled, every
    service of either profile (what `down` may have to stop, what `status` may find running)."""
    if include_disabled:
        settings = _with_profile(settings, settings.stack.profile, everything=True)
    infrastructure = infrastructure_specs(settings)
    if include_disabled:
        other = _with_profile(settings, "single" if settings.stack.clustered else "cluster", everything=True)
        names = {spec.name for spec in infrastructure}
        infrastructure += [spec for spec in infrastructure_specs(other) if spec.name not in names]
    return infrastructure + _platform_specs(settings, [spec.name for spec in infrastructure])


def _platform_specs(settings: Settings, infrastructure: list[str]) -> list[ServiceSpec]:
    """rtdp's own long-running services; in the cluster profile started once every engine is healthy
    (Dagster's storage and the collection state must exist first)."""
    stack = settings.stack
    specs: list[ServiceSpec] = []
    if stack.stream.enabled:
        heartbeat = settings.run_dir / "stream" / "heartbeat.json"
        specs.append(platform_service_spec(settings, "stream", heartbeat, settings.stream.heartbeat_stale_s))
    if stack.ingest.enabled:
        heartbeat = settings.run_dir / "ingest" / "heartbeat.json"
        specs.append(platform_service_spec(settings, "ingest", heartbeat, 60.0, progressing=True))
    if stack.serve.enabled:
        specs.append(serve_spec(settings))
    if stack.dagster.enabled:
        specs.append(dagster_spec(settings))
    if stack.clustered:
        for spec in specs:
            spec.depends_on = tuple(infrastructure)
    return specs

"""What the stack profile decides beyond the stack: endpoints and defaults the cluster profile changes.

Only keys left unset are derived, so a value written in the file or the environment always wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from pathlib import Path

    from rtdp_dagster.config.settings import Settings

PASSWORD_ENV = "RTDP_POSTGRES__PASSWORD"


def postgres_passfile(run_dir: Path) -> Path:
    """The libpq password file the stack writes for its PostgreSQL (the password stays out of URLs)."""
    return run_dir / "postgres" / "pgpass"


def apply_stack_profile(settings: Settings) -> None:
    """Fill what the profile derives; raises ValueError naming the key the cluster profile lacks."""
    stack, kafka, postgres = settings.stack, settings.kafka, settings.postgres
    host = stack.bind_host
    postgres.host = postgres.host or host
    postgres.port = postgres.port or stack.postgres.port
    for topic in kafka.topics:
        if topic.replication_factor is None:
            topic.replication_factor = stack.kafka.cluster_replication_factor if stack.clustered else 1
        if topic.min_insync_replicas is None and stack.clustered:
            topic.min_insync_replicas = min(stack.kafka.cluster_min_insync_replicas, topic.replication_factor)
    if not stack.clustered:
        return
    if not kafka.bootstrap_servers:
        kafka.bootstrap_servers = ",".join(f"{host}:{node.port}" for node in stack.kafka_nodes())
    master = f"spark://{host}:{stack.spark_standalone.master_port}"
    # The Spark Connect server and the stream's own application both run on the standalone workers.
    if "master" not in settings.spark.model_fields_set:
        settings.spark.master = master
    if "master" not in settings.stream.model_fields_set:
        settings.stream.master = master
    if postgres.password is None:
        raise ValueError(f"postgres.password: required by stack.profile cluster; set {PASSWORD_ENV}")
    if not settings.collection.state_url:
        passfile = quote(str(postgres_passfile(settings.run_dir)), safe="/")
        settings.collection.state_url = (
            f"postgresql+psycopg2://{postgres.user}@{postgres.host}:{postgres.port}/"
            f"{postgres.collection_database}?passfile={passfile}"
        )

"""Master data: servers, sites, applications and topology, versioned, loaded into Delta, used for enrichment.

Files of record live in ``master_data/vNNNN/`` (``files``); ``rtdp master load`` validates them
and writes the Delta table ``master_data_hosts`` (``load``, layout in ``table``); the stream and
the batch layer enrich points through ``lookup``. Importing this package does not import Spark.
"""

from __future__ import annotations

from rtdp_dagster.master_data.errors import MasterDataError, Problem
from rtdp_dagster.master_data.files import load_master_data
from rtdp_dagster.master_data.models import HostEntry, MasterData, MasterVersion

__all__ = ["HostEntry", "MasterData", "MasterDataError", "MasterVersion", "Problem", "load_master_data"]

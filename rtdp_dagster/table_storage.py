"""The files of the Delta tables, read outside Spark through fsspec: a local folder and an object store alike.

A table path is what Spark is given (``/srv/delta/bronze``, ``file:/srv/delta/bronze``,
``s3a://bucket/delta/bronze``, ``abfss://...``, ``gs://...``); fsspec picks the filesystem from the
scheme (the object-store ones need their fsspec package installed: s3fs, adlfs, gcsfs) and reads
credentials the way that package does, or from ``storage_options``.
"""

from __future__ import annotations

import posixpath
from typing import Any

import fsspec
from fsspec.spec import AbstractFileSystem


class TableFiles:
    """Read access to the files under one table's folder; paths are relative to the table."""

    def __init__(self, table_path: str, storage_options: dict[str, Any] | None = None) -> None:
        filesystem, root = fsspec.core.url_to_fs(table_path, **(storage_options or {}))
        self.filesystem: AbstractFileSystem = filesystem
        self.root: str = root.rstrip("/") or "/"

    def _path(self, relative: str) -> str:
        return posixpath.join(self.root, relative) if relative else self.root

    def is_dir(self, relative: str = "") -> bool:
        return self.filesystem.isdir(self._path(relative))

    def names(self, relative: str = "") -> list[str]:
        """File and folder names directly in a folder of the table (empty if it does not exist)."""
        folder = self._path(relative)
        # fsspec caches listings per filesystem instance (shared process-wide); a log folder grows.
        self.filesystem.invalidate_cache(folder)
        try:
            entries = self.filesystem.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(str(entry).rstrip("/")) for entry in entries)

    def read_text(self, relative: str) -> str:
        data = self.filesystem.cat_file(self._path(relative))
        return data.decode("utf-8") if isinstance(data, bytes) else data

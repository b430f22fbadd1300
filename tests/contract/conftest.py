"""The back ends the metadata-store contract suite runs against.

Every test in this directory takes `backend` and runs once per `MetadataStore`
implementation: `[local]` (`LocalMetadataStore`, a JSON file in the test's tmp dir) and
`[zookeeper]` (`ZooKeeperMetadataStore` in a fresh chroot of the session's real
ZooKeeper, marked `cluster`). The backends themselves are in support/metadata_stores.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from support.metadata_stores import Backend, LocalBackend, ZooKeeperBackend


@pytest.fixture(params=["local", pytest.param("zookeeper", marks=pytest.mark.cluster)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made: Backend
    if request.param == "local":
        made = LocalBackend(tmp_path)
    else:
        zookeeper = request.getfixturevalue("zookeeper")
        made = await asyncio.to_thread(ZooKeeperBackend.in_fresh_chroot, zookeeper.connect,
                                       asyncio.get_running_loop())
    try:
        yield made
    finally:
        made.close_all()


@pytest.fixture
async def store(backend: Backend) -> Any:
    """Broker 1's store, alone in its metadata."""
    return await backend.open(1)

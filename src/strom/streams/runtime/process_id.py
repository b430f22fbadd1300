"""The instance's process id, kept in its state directory across restarts.

Kafka Streams persists a UUID per state directory (`kafka-streams-process-metadata`,
JSON `{"processId": ...}`); Strom does the same and uses it in the transactional id of
exactly-once producers (`<application.id>-<process id>-<thread>`), so a restarted
instance on the same state directory fences its crashed predecessor's producer at once
and aborts its open transaction, instead of waiting for the transaction timeout.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

FILE_NAME = "kafka-streams-process-metadata"


def process_id(app_state_dir: Path) -> str:
    path = app_state_dir / FILE_NAME
    try:
        found = json.loads(path.read_text()).get("processId")
        if isinstance(found, str) and found:
            return found
    except (FileNotFoundError, ValueError):
        pass
    app_state_dir.mkdir(parents=True, exist_ok=True)
    new = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"processId": new}))
    os.replace(tmp, path)
    return new

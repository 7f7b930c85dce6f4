"""One JSON object per line on stdout: what log collectors on every target parse.

Callers pass only fields they choose; nothing here ever sees a request body or a header, so
keys and user text cannot leak through logging by accident.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

_lock = threading.Lock()


def log(event: str, level: str = "info", stream: TextIO | None = None, **fields: Any) -> None:
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "event": event,
        **fields,
    }
    line = json.dumps(record, ensure_ascii=False, default=str)
    out = stream or sys.stdout
    with _lock:
        out.write(line + "\n")
        out.flush()

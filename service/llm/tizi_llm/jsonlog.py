"""One JSON object per line on stdout, the log format of every tizi service.

Callers pass only the fields they choose: nothing here sees a header or a request body, so
keys and prompt text cannot reach the log by accident. Python `logging` records (uvicorn's)
are routed through the same writer by `JsonLogHandler`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

_lock = threading.Lock()


def log(event: str, level: str = "info", **fields: Any) -> None:
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "event": event,
        **fields,
    }
    line = json.dumps(record, ensure_ascii=False, default=str)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class JsonLogHandler(logging.Handler):
    """Library log records (uvicorn, llama_cpp) as `{"event": "log", "logger": ..., "message": ...}`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not kill the server
            message = str(record.msg)
        log("log", level=record.levelname.lower(), logger=record.name, message=message[:2000])


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    root.handlers[:] = [JsonLogHandler()]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # the gate writes the access log itself (without query strings or client headers)
    logging.getLogger("uvicorn.access").disabled = True

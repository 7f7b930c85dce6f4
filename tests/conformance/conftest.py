"""The deployment the conformance suite checks.

``TIZI_CONFORMANCE_URL`` (with ``TIZI_CONFORMANCE_KEY``, ``TIZI_CONFORMANCE_MODEL`` and
``TIZI_CONFORMANCE_PAYLOAD``, llm or langid) points it at any deployment; without it, the
suite starts the reference server in this process so it always has something to check.
The edge and cluster tiers run the same checks on their own deployments.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .contract import Target

SERVICE = Path(__file__).resolve().parents[2] / "service"


@pytest.fixture(scope="session")
def conformance_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = os.environ.get("TIZI_CONFORMANCE_URL")
    if url:
        yield Target(
            name="given", base_url=url.rstrip("/"), key=os.environ["TIZI_CONFORMANCE_KEY"],
            model=os.environ.get("TIZI_CONFORMANCE_MODEL", "tizi-langid-ma"),
            payload=os.environ.get("TIZI_CONFORMANCE_PAYLOAD", "llm"),
        )  # fmt: skip
        return
    sys.path.insert(0, str(SERVICE))
    from tizi_service.model import export_model, load_identifier
    from tizi_service.server import MODEL_ID, App, Config, drain_and_stop, start

    root = tmp_path_factory.mktemp("conformance")
    export_model(root / "model")
    keys = root / "keys"
    keys.mkdir()
    key = "tizi-" + secrets.token_hex(16)
    (keys / "key-0").write_text(key)
    model = load_identifier(str(root / "model"))
    app = App(
        Config(host="127.0.0.1", port=0, keys_dir=str(keys), keys_recheck_seconds=0), loader=lambda _d: model
    )
    server, thread = start(app)
    assert app.ready.wait(30)
    yield Target("in-process", f"http://127.0.0.1:{server.server_port}", key, MODEL_ID, "langid")
    drain_and_stop(app, server)
    thread.join(5)

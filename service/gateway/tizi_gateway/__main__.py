"""``python3 -m tizi_gateway run|publish``: the gateway's two roles in one image."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tizi_gateway import envoy
from tizi_gateway.publish import publish
from tizi_gateway.supervisor import Inputs, Supervisor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tizi_gateway")
    sub = parser.add_subparsers(dest="role", required=True)
    run = sub.add_parser("run", help="run Envoy, following the settings and keys")
    run.add_argument("--config-dir", type=Path, help="edge: the config volume with a current link")
    run.add_argument("--settings", type=Path, default=Path("/etc/tizi-gateway/gateway.json"))
    run.add_argument("--keys", type=Path, default=Path("/run/secrets/tizi"))
    run.add_argument("--state-dir", type=Path, default=Path("/var/lib/tizi-gateway"))
    run.add_argument("--run-dir", default="/run/tizi-gateway")
    run.add_argument("--envoy", default=os.environ.get("TIZI_ENVOY", "envoy"))
    run.add_argument(
        "--drain-seconds", type=int, default=int(os.environ.get("TIZI_GATEWAY_DRAIN_SECONDS", "5"))
    )
    pub = sub.add_parser("publish", help="edge: swap in the staged configuration, wait until applied")
    pub.add_argument("--staging", type=Path, default=Path("/staging"))
    pub.add_argument("--config-dir", type=Path, default=Path("/etc/tizi-gateway"))
    pub.add_argument("--state-dir", type=Path, default=Path("/var/lib/tizi-gateway"))
    pub.add_argument("--revision", required=True)
    pub.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    if args.role == "publish":
        code = publish(args.staging, args.config_dir, args.state_dir, args.revision, args.timeout)
        if code == 0:
            os.execvp("sleep", ["sleep", "infinity"])
        return code
    if args.config_dir:
        current = args.config_dir / "current"
        inputs = Inputs(settings=current / "gateway.json", keys=current / "keys", link=current)
    else:
        inputs = Inputs(settings=args.settings, keys=args.keys)
    paths = envoy.Paths(
        run_dir=args.run_dir,
        cert_file=str(args.state_dir / "tls" / "site.crt"),
        key_file=str(args.state_dir / "tls" / "site.key"),
    )
    return Supervisor(inputs, paths, args.state_dir, args.envoy, args.drain_seconds).run()


if __name__ == "__main__":
    sys.exit(main())

"""The managed serverless target: Koyeb, for public data only unless a legal basis allows more.

Koyeb has no African region (shared/research/morocco.md), so the residency rules refuse
it for personal, sensitive and vital data before this component is ever built.  Koyeb
cannot mount files, so the keys travel as a Koyeb Secret referenced by the service's
environment (``TIZI_API_KEYS``); the value never appears in the service definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_koyeb as koyeb

from components.placement import TargetPlacement
from components.rules.catalogue import load_catalogue
from components.spec.secrets import split_keys
from components.spec.service import ServiceSpec

API_KEYS_ENV = "TIZI_API_KEYS"


@dataclass(frozen=True)
class KoyebServiceArgs:
    """Inputs of ``KoyebService``: the validated spec, this target's placement, the keys."""

    spec: ServiceSpec
    placement: TargetPlacement
    api_keys: pulumi.Input[str]


def koyeb_region(region_id: str) -> str:
    """Koyeb's short region code (``par``) for a catalogue region (``eu-paris``)."""
    region = load_catalogue().find(region_id)
    if region is None or region.koyeb_region is None:
        raise ValueError(f"{region_id} is not a Koyeb region")
    return region.koyeb_region


def koyeb_app_name(spec: ServiceSpec) -> str:
    """Koyeb names are global to an organisation: ministry and environment keep them apart."""
    return f"{spec.ministry}-{spec.environment}-{spec.name}"


def service_definition(spec: ServiceSpec, placement: TargetPlacement, secret_name: pulumi.Input[str]) -> dict:
    """The Koyeb service definition for the spec: scale-to-zero and concurrency included."""
    target = placement.target
    app_name = koyeb_app_name(spec)
    envs: list[dict[str, pulumi.Input[str]]] = [
        {"key": name, "value": value} for name, value in sorted(spec.container_env.items())
    ]
    envs.append({"key": API_KEYS_ENV, "secret": secret_name})
    return {
        "name": app_name,
        "type": "WEB",
        "regions": [koyeb_region(target.region)],
        "docker": {"image": spec.image, "command": " ".join(spec.command) or None, "args": list(spec.args)},
        "instance_types": [{"type": target.instance_type}],
        "scalings": [
            {
                "min": spec.scaling.min,
                "max": spec.scaling.max,
                "targets": [{"concurrent_requests": [{"value": spec.scaling.target_concurrency}]}],
            }
        ],
        "ports": [{"port": spec.port, "protocol": "http"}],
        "routes": [{"path": "/", "port": spec.port}],
        "envs": envs,
        "health_checks": [{"grace_period": 30, "http": {"path": spec.health.readiness, "port": spec.port}}],
    }


class KoyebService(pulumi.ComponentResource):
    """The inference service on Koyeb (the provider and its token come in through opts)."""

    app_name: pulumi.Output[str]
    """The Koyeb app holding the service."""
    endpoint: pulumi.Output[str]
    """The public HTTPS URL Koyeb gives the app."""

    def __init__(self, name: str, args: KoyebServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tizi:serverless:KoyebService", name, None, opts)
        spec = args.spec
        child = pulumi.ResourceOptions(parent=self)
        app_name = koyeb_app_name(spec)
        secret = koyeb.Secret(
            f"{name}-api-keys",
            name=f"{app_name}-api-keys",
            type="SIMPLE",
            value=pulumi.Output.secret(args.api_keys).apply(lambda raw: ",".join(split_keys(raw))),
            opts=child,
        )
        app = koyeb.App(f"{name}-app", name=app_name, opts=child)
        koyeb.Service(
            f"{name}-service",
            app_name=app.name,
            definition=service_definition(spec, args.placement, secret.name),
            opts=child,
        )
        self.app_name = app.name
        self.endpoint = app.domains.apply(
            lambda domains: f"https://{domains[0].name}" if domains else f"https://{app_name}.koyeb.app"
        )
        self.register_outputs({"app_name": self.app_name, "endpoint": self.endpoint})


def deploy(
    placement: TargetPlacement, spec: ServiceSpec, api_keys: pulumi.Input[str], key_count: int
) -> KoyebService:
    """The component for one Koyeb target, with its own provider (the token is stack config)."""
    provider = koyeb.Provider(f"{placement.target.name}-koyeb")
    return KoyebService(
        placement.target.name,
        KoyebServiceArgs(spec=spec, placement=placement, api_keys=api_keys),
        opts=pulumi.ResourceOptions(providers={"koyeb": provider}),
    )

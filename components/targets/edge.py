"""The edge target: the service as hardened containers on a site's Docker engine.

A clinic or farm has one small CPU box, maybe offline for days: the image is either
pulled when missing or already loaded from an offline bundle (``imagePull: never``);
the container restarts on its own, is checked by its healthcheck, runs as a non-root
user on a read-only root filesystem and rotates its logs.  How the container is
configured is decided by ``edge_plan`` (pure, shared with the edge tests); this
component only turns that plan into Docker resources.

API keys reach the container as files in a key volume it mounts read-only, never as
environment variables; they are uploaded through a never-started key writer, because the
provider copies uploads to ``/`` and Docker refuses that on a read-only root (see
``edge_plan``).  The volume's name carries a short digest of the key set, so a rotation
creates a fresh volume: a key removed from the stack cannot linger in an old file.  A
roll (new image, keys or settings) starts the new payload container beside the old one on
the site's private network; once it is healthy, a publisher hands the gateway the new
configuration and becomes healthy only when the gateway has switched (``gateway_plan``);
the replaced payload is removed after that. Payload containers, publishers and volumes ask
for create-before-delete explicitly, since pulumi-docker maps ``Container`` with
delete-before-replace; the gateway keeps its name and ports, so replacing it (a new
gateway image) is delete-first: a few seconds without service, said in the README.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import urlparse

import pulumi
import pulumi_docker as docker

from components.placement import TargetPlacement
from components.spec.labels import REGION_LABEL, TARGET_LABEL
from components.spec.runtime import MODEL_IMAGE_DIR
from components.spec.secrets import key_file_name, split_keys
from components.spec.service import Quantity, ServiceSpec
from components.targets.edge_plan import EdgeContainerPlan, plan_edge_container
from components.targets.gateway_plan import (
    EdgeGatewayPlan,
    config_revision,
    gateway_settings,
    publisher_uploads,
    settings_text,
)


@dataclass(frozen=True)
class EdgeServiceArgs:
    """Inputs of ``EdgeService``: the validated spec, this site's placement, the keys.

    ``key_count`` (how many keys, not what they are) names the key files up front.
    """

    spec: ServiceSpec
    placement: TargetPlacement
    api_keys: pulumi.Input[str]
    key_count: int


def site_name(spec: ServiceSpec, placement: TargetPlacement) -> str:
    """The prefix of every Docker object of this site target."""
    return f"tizi-{spec.ministry}-{spec.environment}-{placement.target.name}"


def container_plan(spec: ServiceSpec, placement: TargetPlacement, key_count: int) -> EdgeContainerPlan:
    """The payload container's configuration for this site, from the spec alone."""
    target = placement.target
    return plan_edge_container(
        name=site_name(spec, placement),
        image=spec.image,
        port=spec.port,
        host_port=target.host_port,
        memory_mb=Quantity.memory_mib(spec.resources.memory),
        cpus=Quantity.cpus(spec.resources.cpu),
        env=spec.container_env,
        secret_names=[key_file_name(i) for i in range(key_count)],
        health_paths={
            "startup": spec.health.startup,
            "liveness": spec.health.liveness,
            "readiness": spec.health.readiness,
        },
        expose=target.bind_address == "0.0.0.0",
        startup_seconds=spec.health.startup_seconds,
        model_image=spec.model.image,
        network=f"{site_name(spec, placement)}-net",
        command=spec.command,
        args=spec.args,
        # the site is this container's region; the stack-wide label transform keeps it
        labels={REGION_LABEL: target.region, TARGET_LABEL: target.name},
    )


def gateway_plan(spec: ServiceSpec, placement: TargetPlacement) -> EdgeGatewayPlan:
    """The site's gateway: the site port (TLS unless loopback-only) and /metrics on loopback."""
    target = placement.target
    base = site_name(spec, placement)
    return EdgeGatewayPlan(
        name=f"{base}-gateway",
        network=f"{base}-net",
        host_ip=target.bind_address,
        host_port=target.host_port,
        metrics_port=target.metrics_port,
        labels={REGION_LABEL: target.region, TARGET_LABEL: target.name},
    )


def tls_names(placement: TargetPlacement) -> tuple[str, ...]:
    """What the site certificate names: the address clients use, and loopback for the box itself."""
    return tuple(dict.fromkeys((site_address(placement), "localhost", "127.0.0.1")))


def site_address(placement: TargetPlacement) -> str:
    """The address clients use: the engine's host, or loopback for an engine on this machine."""
    target = placement.target
    if target.host.startswith("unix://"):
        return "127.0.0.1"
    return urlparse(target.host).hostname or target.host


def _key_set_digest(raw: str) -> str:
    return hashlib.sha256("\n".join(split_keys(raw)).encode()).hexdigest()[:12]


def _revision(plan: EdgeContainerPlan, raw_keys: str, image: str) -> str:
    """A short digest of everything that defines the running container."""
    return hashlib.sha256(f"{plan!r}|{_key_set_digest(raw_keys)}|{image}".encode()).hexdigest()[:10]


class EdgeService(pulumi.ComponentResource):
    """The inference service on one edge site's Docker engine (the provider comes in through opts)."""

    container_name: pulumi.Output[str]
    """The container's name on the site's engine, for ``docker logs`` by a technician."""
    endpoint: pulumi.Output[str]
    """The URL the site's clients call (the gateway)."""
    gateway_name: pulumi.Output[str]
    """The gateway container's name on the site's engine."""

    def __init__(self, name: str, args: EdgeServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tizi:edge:EdgeService", name, None, opts)
        plan = container_plan(args.spec, args.placement, args.key_count)
        child = pulumi.ResourceOptions(parent=self)
        keys = pulumi.Output.secret(args.api_keys)

        # By ID: the provider reads a container's image back as its ID, so a name would
        # show a diff, and a replacement, on every update.  A local image (loaded from an
        # offline bundle) is used as it is; a missing one is pulled.
        image_id = docker.RemoteImage(
            f"{name}-image", name=plan.image, keep_locally=True, opts=child
        ).image_id
        # The provider replaces a Container, and a Volume whose name the program sets, delete
        # first (and with it everything that depends on it); a roll must create the new one
        # first, so every container and volume here asks for create-before-delete explicitly.
        create_first = pulumi.ResourceOptions(parent=self, delete_before_replace=False)
        # the site's private network: payload revisions and the gateway, nothing published
        network = docker.Network(f"{name}-network", name=plan.network_mode, opts=child)
        keys_volume = docker.Volume(
            f"{name}-keys",
            name=keys.apply(lambda raw: f"{plan.secrets_volume}-{_key_set_digest(raw)}"),
            opts=create_first,
        )
        model_volume, model_loader = self._model_volume(name, plan, args.spec, create_first)

        writer = docker.Container(
            f"{name}-key-writer",
            **{
                **plan.key_writer_pulumi_args(),
                "image": image_id,
                "name": keys_volume.name.apply(lambda volume: f"{volume}-writer"),
                "volumes": [{"volume_name": keys_volume.name, "container_path": plan.secrets_dir}],
                "uploads": keys.apply(lambda raw: _key_uploads(plan, raw)),
            },
            opts=create_first,
        )
        container_args = plan.pulumi_args()
        container_args["image"] = image_id
        container_args["volumes"] = [
            {"volume_name": keys_volume.name, "container_path": plan.secrets_dir, "read_only": True},
            {
                "volume_name": model_volume.name,
                "container_path": plan.model_cache_dir,
                # weights from a model image are verified, never written by the server
                "read_only": bool(plan.model_image),
            },
        ]
        # Any change (image, keys, settings) gives the container a new name, so the
        # replacement is created first, on the site network beside the old one, and becomes
        # healthy (wait) before the gateway is pointed at it.
        container_args["name"] = pulumi.Output.all(keys, image_id).apply(
            lambda parts: f"{plan.name}-{_revision(plan, parts[0], parts[1])}"
        )
        container = docker.Container(
            f"{name}-container",
            wait=True,
            # the model's load budget, and a minute for the first healthchecks
            wait_timeout=args.spec.health.startup_seconds + 60,
            **container_args,
            opts=pulumi.ResourceOptions(
                parent=self, delete_before_replace=False, depends_on=[writer, network, *model_loader]
            ),
        )
        gateway = self._gateway(name, args, network, container, keys, create_first)
        self.container_name = container.name
        scheme = "https" if args.spec.gateway.tls != "off" else "http"
        self.endpoint = pulumi.Output.from_input(
            f"{scheme}://{site_address(args.placement)}:{args.placement.target.host_port}"
        )
        self.gateway_name = gateway.name
        self.register_outputs(
            {
                "container_name": self.container_name,
                "endpoint": self.endpoint,
                "gateway_name": self.gateway_name,
            }
        )

    def _gateway(
        self,
        name: str,
        args: EdgeServiceArgs,
        network: docker.Network,
        payload: docker.Container,
        keys: pulumi.Output[str],
        create_first: pulumi.ResourceOptions,
    ) -> docker.Container:
        """The site's long-lived gateway, and the publisher of the current configuration."""
        gw = gateway_plan(args.spec, args.placement)
        child = pulumi.ResourceOptions(parent=self)
        image_id = docker.RemoteImage(
            f"{name}-gateway-image", name=gw.image, keep_locally=True, opts=child
        ).image_id
        config_volume = docker.Volume(f"{name}-gateway-config", name=gw.config_volume, opts=child)
        state_volume = docker.Volume(f"{name}-gateway-state", name=gw.state_volume, opts=child)
        gateway = docker.Container(
            f"{name}-gateway",
            **{**gw.gateway_args(), "image": image_id},
            # same name and ports: a replacement (a new gateway image) must delete first
            opts=pulumi.ResourceOptions(
                parent=self, delete_before_replace=True, depends_on=[network, config_volume, state_volume]
            ),
        )

        def configuration(parts: list[str]) -> tuple[str, str, list[str]]:
            raw, upstream = parts
            key_list = split_keys(raw)
            text = settings_text(
                gateway_settings(args.spec, upstream, args.spec.port, tls_names=tls_names(args.placement))
            )
            return config_revision(text, key_list), text, key_list

        config = pulumi.Output.all(keys, payload.name).apply(configuration)
        revision = config.apply(lambda c: c[0])
        publisher_args = {
            **gw.publisher_args("0"),
            "name": revision.apply(gw.publisher_name),
            "command": revision.apply(lambda rev: gw.publisher_args(rev)["command"]),
            "image": image_id,
            # derived from the keys, so still a secret on the wire and in state
            "uploads": config.apply(lambda c: publisher_uploads(_with_revision(c[1], c[0]), c[2])),
        }
        docker.Container(
            f"{name}-gateway-publisher",
            wait=True,
            wait_timeout=120,
            **publisher_args,
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=False,
                depends_on=[gateway, payload, config_volume, state_volume],
            ),
        )
        return gateway

    def _model_volume(
        self, name: str, plan: EdgeContainerPlan, spec: ServiceSpec, create_first: pulumi.ResourceOptions
    ) -> tuple[docker.Volume, list[docker.Container]]:
        """The model volume, filled from the model image when the model is an artifact of its own.

        The volume's name carries a digest of the model image and its sha256, so new weights
        land in a fresh volume (Docker copies an image's files only into an empty one).
        """
        if not plan.model_image:
            return docker.Volume(f"{name}-models", name=plan.model_volume, opts=create_first), []
        digest = hashlib.sha256(f"{plan.model_image}|{spec.runtime.model_sha256}".encode()).hexdigest()[:12]
        volume = docker.Volume(f"{name}-models", name=f"{plan.model_volume}-{digest}", opts=create_first)
        image = docker.RemoteImage(
            f"{name}-model-image",
            name=plan.model_image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        loader = docker.Container(
            f"{name}-model-loader",
            **{
                **plan.model_loader_pulumi_args(),
                "image": image.image_id,
                "name": volume.name.apply(lambda volume_name: f"{volume_name}-loader"),
                "volumes": [{"volume_name": volume.name, "container_path": MODEL_IMAGE_DIR}],
            },
            opts=create_first,
        )
        return volume, [loader]


def _with_revision(settings_json: str, revision: str) -> str:
    """The settings file as published: it names its own revision, which the gateway reports back."""
    settings = json.loads(settings_json)
    settings["revision"] = revision
    return settings_text(settings)


def _key_uploads(plan: EdgeContainerPlan, raw_keys: str) -> list[dict[str, str]]:
    """One upload per key, at its file path inside the key volume (written through the writer)."""
    files = sorted(plan.secret_files.items())
    return [
        {"file": path, "content": key} for (_, path), key in zip(files, split_keys(raw_keys), strict=True)
    ]


def deploy(
    placement: TargetPlacement, spec: ServiceSpec, api_keys: pulumi.Input[str], key_count: int
) -> EdgeService:
    """The component for one edge site, with a provider for the site's Docker host."""
    provider = docker.Provider(f"{placement.target.name}-engine", host=placement.target.host)
    return EdgeService(
        placement.target.name,
        EdgeServiceArgs(spec=spec, placement=placement, api_keys=api_keys, key_count=key_count),
        opts=pulumi.ResourceOptions(providers={"docker": provider}),
    )

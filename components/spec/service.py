"""The portable service spec: one description of the inference service, every target.

``read_spec`` turns the ``tizi:`` settings of a ``StackInput`` (decoded the same way
from a stack file or from Pulumi config) into frozen dataclasses, collecting *every*
problem, so a forked stack is fixed in one pass.  It knows nothing about Pulumi:
``tizi check`` runs it offline on stack files and the program runs it at preview.
Each field is read in ``fields``; the parts and vocabulary live in ``parts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.problems import Problem
from components.rules.residency import DataClass, LegalBasis
from components.spec import fields as f
from components.spec.labels import DATA_CLASS_LABEL, ENVIRONMENT_LABEL, MINISTRY_LABEL, REGION_LABEL
from components.spec.parts import (
    DEFAULT_HEALTH,
    ENVIRONMENTS,
    IMAGE_REF,
    LANGUAGES,
    MEMORY_QUANTITY,
    TOP_LEVEL_KEYS,
    Gateway,
    Health,
    Model,
    Quantity,
    Resources,
    Scaling,
)  # fmt: skip
from components.spec.reader import DNS_LABEL, REGION_ID, SLUG, SettingsReader
from components.spec.runtime import DEFAULT_RUNTIME, Runtime, read_runtime
from components.spec.target import Target
from components.spec.targets import read_targets
from components.targets.kinds import StackContext

__all__ = ["ENVIRONMENTS", "LANGUAGES", "TOP_LEVEL_KEYS", "Quantity", "ServiceSpec", "read_spec"]


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a target needs to run the service; built only by ``read_spec``."""

    ministry: str
    environment: str
    data_class: DataClass
    region: str
    name: str
    image: str
    port: int
    model: Model
    resources: Resources
    scaling: Scaling
    targets: tuple[Target, ...]
    fallback_regions: tuple[str, ...] = ()
    legal_basis: LegalBasis | None = None
    languages: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_names: tuple[str, ...] = ("apiKeys",)
    health: Health = DEFAULT_HEALTH
    runtime: Runtime = DEFAULT_RUNTIME
    gateway: Gateway = field(default_factory=Gateway)

    @property
    def labels(self) -> dict[str, str]:
        """The labels every resource carries (applied through a stack transform)."""
        return {
            MINISTRY_LABEL: self.ministry,
            ENVIRONMENT_LABEL: self.environment,
            DATA_CLASS_LABEL: self.data_class.value,
            REGION_LABEL: self.region,
        }

    @property
    def api_key_secret(self) -> str:
        """The Kubernetes Secret holding the API keys (the component writes it, the chart mounts it)."""
        return f"{self.name}-api-keys"

    @property
    def container_env(self) -> dict[str, str]:
        """The environment every target gives the container: the spec's env plus what the
        service must know about its model (never a secret: secrets arrive as files)."""
        return {**self.env, **self.runtime.env, "TIZI_LANGUAGES": ",".join(self.model.languages)}

    @property
    def image_tag(self) -> str:
        match = IMAGE_REF.fullmatch(self.image)
        return (match and match.group("tag")) or ""

    @property
    def image_digest(self) -> str:
        match = IMAGE_REF.fullmatch(self.image)
        return (match and match.group("digest")) or ""

    @property
    def image_repository(self) -> str:
        match = IMAGE_REF.fullmatch(self.image)
        return match.group("repo") if match else self.image


def read_spec(settings: Mapping[str, Any]) -> tuple[ServiceSpec, list[Problem]]:
    """Read every field, even after a failure, and return the spec with all problems found.

    The spec returned beside problems holds defaults where a field was invalid; callers
    use it only to find more problems (``validation.validate_stack``), never to deploy.
    Residency is *not* judged here (see ``placement.judge``), but cross-field rules about
    the spec itself (scale-to-zero per target, languages, GPUs on edge) are.
    """
    r = SettingsReader(settings)
    r.unknown("", settings, TOP_LEVEL_KEYS)

    ministry = r.string(
        "ministry",
        settings.get("ministry"),
        SLUG,
        "must be a lowercase slug (a-z, 0-9, '-'), 2-30 characters",
    )
    environment = r.choice("environment", settings.get("environment"), ENVIRONMENTS)
    data_class_raw = r.choice("dataClass", settings.get("dataClass"), tuple(d.value for d in DataClass))
    data_class = DataClass(data_class_raw) if data_class_raw else DataClass.PUBLIC
    region = r.string(
        "region",
        settings.get("region"),
        REGION_ID,
        "must be a region id from the catalogue (see `tizi regions`)",
    )
    fallback = r.strings("fallbackRegions", settings.get("fallbackRegions"))
    for index, fb in enumerate(fallback):
        if fb == region:
            r.fail(f"fallbackRegions[{index}]", fb, "must differ from tizi:region")
    if len(set(fallback)) != len(fallback):
        r.fail("fallbackRegions", list(fallback), "must not repeat a region")
    legal_basis = f.legal_basis(r, settings.get("legalBasis"))
    languages = f.language_codes(r, "languages", settings.get("languages"), required=False)

    service = r.section("service")
    r.unknown(
        "service",
        service,
        ("name", "runtime", "image", "command", "args", "port", "env", "secrets", "health"),
    )
    name = r.string(
        "service.name",
        service.get("name"),
        DNS_LABEL,
        "must be a DNS label: lowercase letters, digits and '-', 1-40 characters",
        default="inference",
    )
    port = r.integer("service.port", service.get("port"), 1024, 65535, default=8080)
    env = f.env(r, service.get("env"))
    secret_names = f.secret_names(r, service.get("secrets"), settings)
    model = f.model(r, r.section("model"))
    model_mib = Quantity.memory_mib(model.size) if MEMORY_QUANTITY.fullmatch(model.size) else 100
    runtime = read_runtime(r, service.get("runtime"), model.name, model_mib, port)
    image = f.image(r, service.get("image"), environment, runtime)
    health = f.health(r, service.get("health"), runtime)
    command, args = f.command(r, service, runtime)
    resources = f.resources(r, r.section("resources"), Resources(cpu=runtime.cpu, memory=runtime.memory))
    if runtime.gpu_required > resources.gpu_count:
        r.fail(
            "resources.gpu.count",
            resources.gpu_count,
            f"the {runtime.preset.value} runtime needs at least {runtime.gpu_required} GPU(s) "
            "(its tensorParallelSize)",
        )
    scaling = f.scaling(r, r.section("scaling"))
    targets = read_targets(r, settings.get("targets"), StackContext(region, ministry, environment))

    for code in languages:
        if code in LANGUAGES and code not in model.languages:
            r.fail(
                "languages",
                list(languages),
                f"the stack must serve {code!r} but tizi:model.languages declares only "
                f"{', '.join(model.languages) or 'none'}",
            )
    gateway = f.gateway(r, r.section("gateway"), targets)
    f.scale_to_zero(r, scaling, targets)
    f.knative_model_image(r, model.image, targets)
    f.gpu_targets(r, resources, targets)

    spec = ServiceSpec(
        ministry=ministry,
        environment=environment,
        data_class=data_class,
        region=region,
        name=name,
        image=image,
        port=port,
        model=model,
        resources=resources,
        scaling=scaling,
        targets=targets,
        fallback_regions=fallback,
        legal_basis=legal_basis,
        languages=languages,
        command=command,
        args=args,
        env=env,
        secret_names=secret_names,
        health=health,
        runtime=runtime,
        gateway=gateway,
    )
    return spec, r.problems

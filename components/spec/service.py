"""The portable service spec: one description of the inference service, every target.

``read_spec`` turns the ``tizi:`` settings of a ``StackInput`` (decoded the same way
from a stack file or from Pulumi config) into frozen dataclasses, collecting *every*
problem, so a forked stack is fixed in one pass.  It knows nothing about Pulumi:
``tizi check`` runs it offline on stack files and the program runs it at preview.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.problems import Problem, hidden
from components.rules.residency import DataClass, LegalBasis, LegalBasisKind
from components.spec.labels import DATA_CLASS_LABEL, ENVIRONMENT_LABEL, MINISTRY_LABEL, REGION_LABEL
from components.spec.reader import DNS_LABEL, REGION_ID, SLUG, SettingsReader
from components.spec.runtime import DEFAULT_RUNTIME, Preset, Runtime, read_runtime
from components.spec.secrets import SECRET_KEYS, carries_credentials, looks_like_secret
from components.spec.target import Target
from components.spec.targets import read_targets
from components.targets.kinds import KINDS, StackContext, kinds_with

#: Language codes the kit understands (ISO 639-3 for Darija and Standard Moroccan Amazigh).
LANGUAGES = ("ar", "ary", "zgh", "fr", "en", "es")
ENVIRONMENTS = ("dev", "test", "staging", "prod")
GPU_TYPES = ("nvidia-t4", "nvidia-l4", "nvidia-a10", "nvidia-a100", "nvidia-h100")
#: image: a path in the server image; oci: an image of its own carrying the weights under
#: /model (copied into the model volume by every target); pypi, file, pvc: mounted by hand
MODEL_SOURCE_SCHEMES = ("image", "oci", "pypi", "file", "pvc")

_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SECRET_NAME = re.compile(r"^[a-z][A-Za-z0-9]{0,40}$")
_CPU = re.compile(r"([0-9]{1,7}m|[0-9]{1,4}(\.[0-9]{1,3})?)")
_MEMORY = re.compile(r"[0-9]{1,7}(Ki|Mi|Gi|Ti)")

#: Keys a stack may set under ``tizi:``; anything else is a typo worth stopping for.
TOP_LEVEL_KEYS = (
    "ministry",
    "environment",
    "dataClass",
    "region",
    "fallbackRegions",
    "legalBasis",
    "languages",
    "service",
    "model",
    "resources",
    "scaling",
    "targets",
    *SECRET_KEYS,
)


_BINARY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
#: the largest machine tizi will plan for; beyond that a value is a typo, not a server
MAX_CPUS = 256
MAX_MEMORY_MIB = 2**20


class Quantity:
    """Kubernetes quantities, parsed only as far as tizi compares them."""

    @staticmethod
    def memory_mib(value: str) -> int:
        number, unit = value[:-2], value[-2:]
        return max(1, int(number) * _BINARY_UNITS[unit] // 2**20)

    @staticmethod
    def cpus(value: str) -> float:
        return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


@dataclass(frozen=True)
class Health:
    """HTTP paths the platform probes; readiness must wait for the model to load."""

    startup: str = "/healthz"
    liveness: str = "/healthz"
    readiness: str = "/readyz"
    #: seconds a fresh replica may take to load its model before it must answer (the runtime's)
    startup_seconds: int = 60


@dataclass(frozen=True)
class Model:
    """What the service serves; ``languages`` is what the model declares it covers."""

    name: str
    source: str
    size: str
    languages: tuple[str, ...]

    @property
    def image(self) -> str:
        """The image carrying the weights (``oci:`` sources), or empty."""
        return self.source.removeprefix("oci:") if self.source.startswith("oci:") else ""


@dataclass(frozen=True)
class Resources:
    cpu: str = "500m"
    memory: str = "512Mi"
    gpu_count: int = 0
    gpu_type: str = ""


@dataclass(frozen=True)
class Scaling:
    """Replica bounds; ``min == 0`` asks for scale-to-zero (Knative and Koyeb only)."""

    min: int = 1
    max: int = 3
    target_concurrency: int = 10


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
    health: Health = Health()
    runtime: Runtime = DEFAULT_RUNTIME

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
        match = _IMAGE.fullmatch(self.image)
        return (match and match.group("tag")) or ""

    @property
    def image_digest(self) -> str:
        match = _IMAGE.fullmatch(self.image)
        return (match and match.group("digest")) or ""

    @property
    def image_repository(self) -> str:
        match = _IMAGE.fullmatch(self.image)
        return match.group("repo") if match else self.image


def _language_codes(r: SettingsReader, key: str, value: Any, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    codes = r.strings(key, value)
    if required and not codes:
        r.fail(key, value, f"must list at least one language of {', '.join(LANGUAGES)}")
    for code in codes:
        if code not in LANGUAGES:
            r.fail(key, code, f"unknown language code; allowed: {', '.join(LANGUAGES)}")
    if len(set(codes)) != len(codes):
        r.fail(key, value, "must not repeat a language")
    return codes


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
    legal_basis = _legal_basis(r, settings.get("legalBasis"))
    languages = _language_codes(r, "languages", settings.get("languages"), required=False)

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
    env = _env(r, service.get("env"))
    secret_names = _secret_names(r, service.get("secrets"), settings)
    model = _model(r, r.section("model"))
    model_mib = Quantity.memory_mib(model.size) if _MEMORY.fullmatch(model.size) else 100
    runtime = read_runtime(r, service.get("runtime"), model.name, model_mib, port)
    image = _image(r, service.get("image"), environment, runtime)
    health = _health(r, service.get("health"), runtime)
    command, args = _command(r, service, runtime)
    resources = _resources(r, r.section("resources"), Resources(cpu=runtime.cpu, memory=runtime.memory))
    if runtime.gpu_required > resources.gpu_count:
        r.fail(
            "resources.gpu.count",
            resources.gpu_count,
            f"the {runtime.preset.value} runtime needs at least {runtime.gpu_required} GPU(s) "
            "(its tensorParallelSize)",
        )
    scaling = _scaling(r, r.section("scaling"))
    targets = read_targets(r, settings.get("targets"), StackContext(region, ministry, environment))

    for code in languages:
        if code in LANGUAGES and code not in model.languages:
            r.fail(
                "languages",
                list(languages),
                f"the stack must serve {code!r} but tizi:model.languages declares only "
                f"{', '.join(model.languages) or 'none'}",
            )
    _scale_to_zero(r, scaling, targets)
    _gpu_targets(r, resources, targets)

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
    )
    return spec, r.problems


def _legal_basis(r: SettingsReader, raw: Any) -> LegalBasis | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        r.fail("legalBasis", raw, "must be a mapping with kind and reference")
        return None
    r.unknown("legalBasis", raw, ("kind", "reference"))
    kind = r.choice("legalBasis.kind", raw.get("kind"), tuple(k.value for k in LegalBasisKind))
    reference = _visible(raw.get("reference"))
    if reference is None or len(reference) < 3 or len(reference) > 200 or _is_placeholder(reference):
        r.fail(
            "legalBasis.reference",
            raw.get("reference"),
            "must record the actual reference of the basis, 3-200 visible characters "
            "(e.g. a CNDP authorisation number), not a placeholder",
        )
        return None
    return LegalBasis(LegalBasisKind(kind), reference) if kind else None


#: references that record nothing: a transfer abroad needs a real authorisation number
_PLACEHOLDERS = frozenset(
    {"todo", "tbd", "tba", "xxx", "n/a", "na", "none", "null", "nil", "test", "placeholder", "changeme",
     "unknown", "pending", "example", "sample", "dummy", "fixme", "123", "1234", "000", "0000"}
)  # fmt: skip


def _visible(value: Any) -> str | None:
    """The text with invisible characters (zero-width, controls, odd spaces) removed."""
    if not isinstance(value, str):
        return None
    kept = "".join(ch for ch in value if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    return " ".join(kept.split())


def _is_placeholder(reference: str) -> bool:
    folded = reference.casefold().strip(" .-_/#")
    return folded in _PLACEHOLDERS or len(set(folded)) <= 1 or folded.startswith(("todo", "tbd", "xxx"))


def _image(r: SettingsReader, raw: Any, environment: str, runtime: Runtime) -> str:
    if raw is None and runtime.default_image:
        raw = runtime.default_image
    elif raw is None:
        r.fail("service.image", raw, f"must be set: the {runtime.preset.value} runtime has no default image")
        return ""
    image = r.string(
        "service.image", raw, _IMAGE, "must be an image reference repository[:tag][@sha256:<64 hex>]"
    )
    match = _IMAGE.fullmatch(image) if image else None
    if match and not match.group("tag") and not match.group("digest"):
        r.fail("service.image", raw, "must name a tag or a digest")
    elif match and match.group("tag") == "latest" and not match.group("digest") and environment == "prod":
        r.fail("service.image", raw, "prod stacks must pin a version tag or a digest, not 'latest'")
    return image


def _command(
    r: SettingsReader, service: Mapping[str, Any], runtime: Runtime
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The preset's command and arguments; only the custom runtime takes them from the stack."""
    command = r.strings("service.command", service.get("command"))
    args = r.strings("service.args", service.get("args"))
    if runtime.preset is not Preset.CUSTOM:
        for key, given in (("service.command", command), ("service.args", args)):
            if given:
                r.fail(
                    key,
                    list(given),
                    f"is set by the {runtime.preset.value} runtime; use runtime: custom to choose it",
                )
        return runtime.command, runtime.args
    return command, args


def _env(r: SettingsReader, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        r.fail("service.env", raw, "must be a mapping of NAME: value")
        return {}
    env: dict[str, str] = {}
    for name, value in raw.items():
        key = f"service.env.{name}"
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            r.fail(key, name, "environment names must match [A-Z_][A-Z0-9_]*")
        elif looks_like_secret(name):
            r.fail(
                key,
                "(redacted)",
                "looks like a secret; declare it in tizi:service.secrets and set it with "
                "`pulumi config set --secret`, never in env",
            )
        elif not isinstance(value, str | int | float) or isinstance(value, bool):
            r.fail(key, hidden(value), "must be a string or a number")
        elif isinstance(value, str) and carries_credentials(value):
            r.fail(
                key,
                hidden(value),
                "carries a credential (user:password@ in a URL); declare it in tizi:service.secrets "
                "and set it with `pulumi config set --secret`, never in env",
            )
        else:
            env[name] = str(value)
    return env


def _secret_names(r: SettingsReader, raw: Any, settings: Mapping[str, Any]) -> tuple[str, ...]:
    names = r.strings("service.secrets", raw, default=("apiKeys",))
    if "apiKeys" not in names:
        r.fail(
            "service.secrets", list(names), "must include apiKeys (the service refuses requests without keys)"
        )
    for index, name in enumerate(names):
        if not _SECRET_NAME.fullmatch(name):
            r.fail(f"service.secrets[{index}]", name, "must be a camelCase name of letters and digits")
        elif name not in SECRET_KEYS:
            r.fail(f"service.secrets[{index}]", name, f"unknown secret; supported: {', '.join(SECRET_KEYS)}")
    return names


def _health(r: SettingsReader, raw: Any, runtime: Runtime) -> Health:
    startup, liveness, readiness = runtime.health or ("/healthz", "/healthz", "/readyz")
    defaults = Health(startup, liveness, readiness, runtime.startup_seconds)
    if raw is None:
        return defaults
    if not isinstance(raw, Mapping):
        r.fail("service.health", raw, "must be a mapping of startup, liveness, readiness paths")
        return defaults
    r.unknown("service.health", raw, ("startup", "liveness", "readiness"))
    path = re.compile(r"/[A-Za-z0-9/._-]{0,200}")
    allowed = "must be an HTTP path starting with '/'"

    def read(probe: str) -> str:
        return r.string(f"service.health.{probe}", raw.get(probe), path, allowed, getattr(defaults, probe))

    return Health(read("startup"), read("liveness"), read("readiness"), runtime.startup_seconds)


def _model(r: SettingsReader, raw: Mapping[str, Any]) -> Model:
    r.unknown("model", raw, ("name", "source", "size", "languages"))
    name = r.string(
        "model.name",
        raw.get("name"),
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,80}$"),
        "must name the model (letters, digits, '.', '_', '/', '-')",
    )
    source = raw.get("source")
    scheme = source.split(":", 1)[0] if isinstance(source, str) and ":" in source else None
    if scheme == "oci" and isinstance(source, str) and not _IMAGE.fullmatch(source.removeprefix("oci:")):
        r.fail("model.source", source, "oci: must name an image repository[:tag][@sha256:<64 hex>]")
        source = ""
    elif scheme not in MODEL_SOURCE_SCHEMES:
        r.fail(
            "model.source",
            source,
            f"must be <scheme>:<location> with scheme {', '.join(MODEL_SOURCE_SCHEMES)} "
            "(models are shipped with the image or a volume, never fetched from a hub at run time)",
        )
        source = ""
    size = r.string(
        "model.size", raw.get("size"), _MEMORY, "must be a size such as 20Mi or 4Gi", default="100Mi"
    )
    if size and Quantity.memory_mib(size) > MAX_MEMORY_MIB:
        r.fail("model.size", size, "must be at most 1Ti")
    languages = _language_codes(r, "model.languages", raw.get("languages"), required=True)
    return Model(name=name, source=source or "", size=size, languages=languages)


def _resources(r: SettingsReader, raw: Mapping[str, Any], defaults: Resources) -> Resources:
    r.unknown("resources", raw, ("cpu", "memory", "gpu"))
    cpu = raw.get("cpu", defaults.cpu)
    if isinstance(cpu, int | float) and not isinstance(cpu, bool):
        cpu = str(cpu)
    allowed = f"must be a CPU quantity such as 500m or 2, at most {MAX_CPUS} CPUs"
    cpu = r.string("resources.cpu", cpu, _CPU, allowed, defaults.cpu)
    if cpu and not 0 < Quantity.cpus(cpu) <= MAX_CPUS:
        r.fail("resources.cpu", cpu, f"must be more than 0 and at most {MAX_CPUS} CPUs")
    memory = r.string(
        "resources.memory",
        raw.get("memory", defaults.memory),
        _MEMORY,
        "must be a memory quantity such as 512Mi or 2Gi",
        defaults.memory,
    )
    if memory and not 64 <= Quantity.memory_mib(memory) <= MAX_MEMORY_MIB:
        r.fail("resources.memory", memory, "must be at least 64Mi (the model must fit) and at most 1Ti")
    gpu = raw.get("gpu") or {}
    if not isinstance(gpu, Mapping):
        r.fail("resources.gpu", gpu, "must be a mapping with count and type")
        gpu = {}
    r.unknown("resources.gpu", gpu, ("count", "type"))
    count = r.integer("resources.gpu.count", gpu.get("count"), 0, 8, default=0)
    gpu_type = gpu.get("type", "")
    if count > 0 and gpu_type not in GPU_TYPES:
        r.fail("resources.gpu.type", gpu_type, f"must be one of {', '.join(GPU_TYPES)} when gpu.count > 0")
    elif count == 0 and gpu_type:
        r.fail("resources.gpu.type", gpu_type, "must be empty when gpu.count is 0")
    return Resources(cpu=cpu, memory=memory, gpu_count=count, gpu_type=gpu_type or "")


def _scaling(r: SettingsReader, raw: Mapping[str, Any]) -> Scaling:
    r.unknown("scaling", raw, ("min", "max", "targetConcurrency"))
    defaults = Scaling()
    low = r.integer("scaling.min", raw.get("min"), 0, default=defaults.min)
    high = r.integer("scaling.max", raw.get("max"), 1, 100, default=defaults.max)
    if high < low:
        r.fail("scaling.max", high, f"must be >= scaling.min ({low})")
    concurrency = r.integer(
        "scaling.targetConcurrency",
        raw.get("targetConcurrency"),
        1,
        1000,
        default=defaults.target_concurrency,
    )
    return Scaling(min=low, max=high, target_concurrency=concurrency)


def _scale_to_zero(r: SettingsReader, scaling: Scaling, targets: tuple[Target, ...]) -> None:
    if scaling.min != 0:
        return
    able = ", ".join(k.value for k in kinds_with("scale_to_zero"))
    for index, target in enumerate(targets):
        if not KINDS[target.kind].scale_to_zero:
            r.fail(
                "scaling.min",
                0,
                f"scale-to-zero is supported on {able} only; targets[{index}] is {target.kind.value}",
            )


def _gpu_targets(r: SettingsReader, resources: Resources, targets: tuple[Target, ...]) -> None:
    if resources.gpu_count == 0:
        return
    for index, target in enumerate(targets):
        if not KINDS[target.kind].gpu:
            r.fail(
                "resources.gpu.count",
                resources.gpu_count,
                f"{target.kind.value} targets are served CPU-only; targets[{index}] is {target.kind.value} "
                "(set gpu.count: 0 or remove that target)",
            )

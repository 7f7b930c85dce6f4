"""Readers of the spec's fields: each reads one setting, records every problem and returns
a usable default, so the whole stack is judged in one pass (``service.read_spec``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from components.problems import hidden
from components.rules.catalogue import TargetKind
from components.rules.residency import LegalBasis, LegalBasisKind
from components.spec.parts import (
    CPU_QUANTITY,
    ENV_NAME,
    GATEWAY_TLS_MODES,
    GPU_TYPES,
    IMAGE_REF,
    LANGUAGES,
    MAX_CPUS,
    MAX_MEMORY_MIB,
    MEMORY_QUANTITY,
    MODEL_SOURCE_SCHEMES,
    SECRET_NAME,
    Gateway,
    Health,
    Model,
    Quantity,
    Resources,
    Scaling,
)  # fmt: skip
from components.spec.reader import SettingsReader
from components.spec.runtime import Preset, Runtime
from components.spec.secrets import SECRET_KEYS, carries_credentials, looks_like_secret
from components.spec.target import Target
from components.targets.kinds import KINDS, kinds_with


def language_codes(r: SettingsReader, key: str, value: Any, required: bool) -> tuple[str, ...]:
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


def legal_basis(r: SettingsReader, raw: Any) -> LegalBasis | None:
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


def image(r: SettingsReader, raw: Any, environment: str, runtime: Runtime) -> str:
    if raw is None and runtime.default_image:
        raw = runtime.default_image
    elif raw is None:
        r.fail("service.image", raw, f"must be set: the {runtime.preset.value} runtime has no default image")
        return ""
    image = r.string(
        "service.image", raw, IMAGE_REF, "must be an image reference repository[:tag][@sha256:<64 hex>]"
    )
    match = IMAGE_REF.fullmatch(image) if image else None
    if match and not match.group("tag") and not match.group("digest"):
        r.fail("service.image", raw, "must name a tag or a digest")
    elif match and match.group("tag") == "latest" and not match.group("digest") and environment == "prod":
        r.fail("service.image", raw, "prod stacks must pin a version tag or a digest, not 'latest'")
    return image


def command(
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


def env(r: SettingsReader, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        r.fail("service.env", raw, "must be a mapping of NAME: value")
        return {}
    env: dict[str, str] = {}
    for name, value in raw.items():
        key = f"service.env.{name}"
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
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


def secret_names(r: SettingsReader, raw: Any, settings: Mapping[str, Any]) -> tuple[str, ...]:
    names = r.strings("service.secrets", raw, default=("apiKeys",))
    if "apiKeys" not in names:
        r.fail(
            "service.secrets", list(names), "must include apiKeys (the service refuses requests without keys)"
        )
    for index, name in enumerate(names):
        if not SECRET_NAME.fullmatch(name):
            r.fail(f"service.secrets[{index}]", name, "must be a camelCase name of letters and digits")
        elif name not in SECRET_KEYS:
            r.fail(f"service.secrets[{index}]", name, f"unknown secret; supported: {', '.join(SECRET_KEYS)}")
    return names


def health(r: SettingsReader, raw: Any, runtime: Runtime) -> Health:
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


def model(r: SettingsReader, raw: Mapping[str, Any]) -> Model:
    r.unknown("model", raw, ("name", "source", "size", "languages"))
    name = r.string(
        "model.name",
        raw.get("name"),
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,80}$"),
        "must name the model (letters, digits, '.', '_', '/', '-')",
    )
    source = raw.get("source")
    scheme = source.split(":", 1)[0] if isinstance(source, str) and ":" in source else None
    if scheme == "oci" and isinstance(source, str) and not IMAGE_REF.fullmatch(source.removeprefix("oci:")):
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
        "model.size", raw.get("size"), MEMORY_QUANTITY, "must be a size such as 20Mi or 4Gi", default="100Mi"
    )
    if size and Quantity.memory_mib(size) > MAX_MEMORY_MIB:
        r.fail("model.size", size, "must be at most 1Ti")
    languages = language_codes(r, "model.languages", raw.get("languages"), required=True)
    return Model(name=name, source=source or "", size=size, languages=languages)


def resources(r: SettingsReader, raw: Mapping[str, Any], defaults: Resources) -> Resources:
    r.unknown("resources", raw, ("cpu", "memory", "gpu"))
    cpu = raw.get("cpu", defaults.cpu)
    if isinstance(cpu, int | float) and not isinstance(cpu, bool):
        cpu = str(cpu)
    allowed = f"must be a CPU quantity such as 500m or 2, at most {MAX_CPUS} CPUs"
    cpu = r.string("resources.cpu", cpu, CPU_QUANTITY, allowed, defaults.cpu)
    if cpu and not 0 < Quantity.cpus(cpu) <= MAX_CPUS:
        r.fail("resources.cpu", cpu, f"must be more than 0 and at most {MAX_CPUS} CPUs")
    memory = r.string(
        "resources.memory",
        raw.get("memory", defaults.memory),
        MEMORY_QUANTITY,
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


def scaling(r: SettingsReader, raw: Mapping[str, Any]) -> Scaling:
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


def gateway(r: SettingsReader, raw: Mapping[str, Any], targets: tuple[Target, ...]) -> Gateway:
    """The gateway settings; TLS defaults to the site CA wherever an edge target faces the LAN."""
    r.unknown("gateway", raw, ("requestsPerMinute", "burst", "tls"))
    defaults = Gateway()
    rpm = r.integer(
        "gateway.requestsPerMinute",
        raw.get("requestsPerMinute"),
        1,
        100_000,
        default=defaults.requests_per_minute,
    )
    burst = r.integer("gateway.burst", raw.get("burst"), 1, 100_000, default=min(defaults.burst, rpm))
    exposed = [
        i for i, t in enumerate(targets) if t.kind is TargetKind.EDGE and t.bind_address != "127.0.0.1"
    ]
    tls = r.choice("gateway.tls", raw.get("tls"), GATEWAY_TLS_MODES, default="site-ca" if exposed else "off")
    if tls == "off" and exposed:
        r.fail(
            "gateway.tls",
            "off",
            f"plain HTTP is allowed only on loopback; targets[{exposed[0]}] binds "
            f"{targets[exposed[0]].bind_address} (use site-ca, or bindAddress: 127.0.0.1)",
        )
    return Gateway(requests_per_minute=rpm, burst=burst, tls=tls)


def scale_to_zero(r: SettingsReader, scaling: Scaling, targets: tuple[Target, ...]) -> None:
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


def knative_model_image(r: SettingsReader, model_image: str, targets: tuple[Target, ...]) -> None:
    """A model image reaches the pod through an init container, which Knative accepts only
    where its operator enabled them: the target must say so (``initContainers: true``), so a
    cluster without the flag fails here, at preview, rather than at Knative's webhook."""
    if not model_image:
        return
    for index, target in enumerate(targets):
        if target.kind is TargetKind.KNATIVE and not target.init_containers:
            r.fail(
                f"targets[{index}].initContainers",
                target.init_containers,
                "must be true when tizi:model.image is set: the weights arrive by an init container, "
                "which Knative allows only with kubernetes.podspec-init-containers: enabled in its "
                "config-features (enable it on the cluster, then set initContainers: true)",
            )


def gpu_targets(r: SettingsReader, resources: Resources, targets: tuple[Target, ...]) -> None:
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

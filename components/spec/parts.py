"""The parts of the service spec and the vocabulary they are read with.

Plain frozen dataclasses (health, model, resources, scaling), the quantities tizi compares,
and the closed sets and patterns of stack values; ``service`` assembles them into the spec
and ``fields`` reads each one from the settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.spec.secrets import SECRET_KEYS

LANGUAGES = ("ar", "ary", "zgh", "fr", "en", "es")
ENVIRONMENTS = ("dev", "test", "staging", "prod")
GPU_TYPES = ("nvidia-t4", "nvidia-l4", "nvidia-a10", "nvidia-a100", "nvidia-h100")
#: image: a path in the server image; oci: an image of its own carrying the weights under
#: /model (copied into the model volume by every target); pypi, file, pvc: mounted by hand
MODEL_SOURCE_SCHEMES = ("image", "oci", "pypi", "file", "pvc")

IMAGE_REF = re.compile(
    r"^(?P<repo>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRET_NAME = re.compile(r"^[a-z][A-Za-z0-9]{0,40}$")
CPU_QUANTITY = re.compile(r"([0-9]{1,7}m|[0-9]{1,4}(\.[0-9]{1,3})?)")
MEMORY_QUANTITY = re.compile(r"[0-9]{1,7}(Ki|Mi|Gi|Ti)")

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
    "gateway",
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


#: how the gateway may encrypt: not at all (loopback-bound sites only), or with the site's own CA
GATEWAY_TLS_MODES = ("off", "site-ca")


@dataclass(frozen=True)
class Gateway:
    """The gateway in front of the payload on every target: per-key limits and TLS.

    ``requests_per_minute`` is each key's sustained rate, ``burst`` how many requests a key
    may send at once after an idle spell (the token bucket's size).
    """

    requests_per_minute: int = 600
    burst: int = 60
    tls: str = "off"


#: the probes of a stack that names none (the reference server's)
DEFAULT_HEALTH = Health()

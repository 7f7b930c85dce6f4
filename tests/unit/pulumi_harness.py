"""Run the real Pulumi program under Pulumi's mocks and record what it registers.

The recording monitor keeps each registration's raw wire form, where secret values
are still wrapped in Pulumi's secret signature, so tests can prove a key never
travels outside a secret.  The mocks also apply the stack transforms the program
registers, as the engine would, so label policy is testable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as runtime_mocks

from components.sources.stack_file import engine_config

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SECRET_KEY = "4dabf18193072939515e22adb298388d"


@dataclass
class Registered:
    """One resource as the program registered it."""

    type: str
    name: str
    inputs: dict[str, Any]
    transformed: dict[str, Any] | None
    raw: dict[str, Any]
    #: resource options as the engine receives them (deleteBeforeReplace[Defined], dependencies)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registered:
        return next(r for r in self.resources if r.name == name)

    @property
    def types(self) -> list[str]:
        return [r.type for r in self.resources]


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.transforms: list[Any] = []
        self.raw_by_name: dict[str, dict[str, Any]] = {}
        self.options_by_name: dict[str, dict[str, Any]] = {}

    def register_transform(self, transform) -> None:
        self.transforms.append(transform)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        transformed = None
        for transform in self.transforms:
            result = transform(
                pulumi.ResourceTransformArgs(
                    custom=bool(args.custom),
                    type_=args.typ,
                    name=args.name,
                    props=transformed or args.inputs,
                    opts=pulumi.ResourceOptions(),
                )
            )
            if result is not None:
                transformed = result.props
        self.evaluation.resources.append(
            Registered(
                args.typ,
                args.name,
                args.inputs,
                transformed,
                self.raw_by_name.get(args.name, {}),
                self.options_by_name.get(args.name, {}),
            )
        )
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            # like the provider: the image's ID, which a container's image is read back as
            outputs["imageId"] = "sha256:" + hashlib.sha256(str(args.inputs["name"]).encode()).hexdigest()
        if args.typ == "kubernetes:core/v1:Namespace":
            outputs.setdefault("metadata", {}).setdefault("name", args.inputs["metadata"]["name"])
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(runtime_mocks.MockMonitor):
    """Keeps the wire form of each registration before the mocks see it unwrapped."""

    def RegisterResource(self, request):
        raw = json_format.MessageToDict(request.object)
        self.mocks.raw_by_name[request.name] = raw
        self.mocks.options_by_name[request.name] = {
            "deleteBeforeReplace": request.deleteBeforeReplace,
            "deleteBeforeReplaceDefined": request.deleteBeforeReplaceDefined,
            "dependencies": list(request.dependencies),
        }
        return super().RegisterResource(request)


def stack_config(stack_file: Path, api_keys: str) -> tuple[dict[str, str], list[str]]:
    """The config map the engine would pass for a stack file, with ``api_keys`` as the secret.

    Read by the same reader as ``tizi check`` (``sources.stack_file.engine_config``); the
    file's encrypted values cannot be decrypted here, so ``api_keys`` stands in for the
    keys and a placeholder for any other secret.
    """
    engine = engine_config(stack_file)
    placeholder = "secret-value-for-tests"
    config = {key: placeholder if value is None else value for key, value in engine.values.items()}
    if "tizi:apiKeys" in engine.secret_keys:
        config["tizi:apiKeys"] = api_keys
    return config, sorted(engine.secret_keys)


def evaluate(
    config: dict[str, str], secret_keys: list[str], stack: str = "test", evaluation: Evaluation | None = None
) -> Evaluation:
    """Run ``components.program.run`` under mocks with this config; raises what the program raises.

    Pass ``evaluation`` to inspect what was registered even when the program raises.
    """
    from components.program import run

    evaluation = evaluation if evaluation is not None else Evaluation()
    mocks = RecordingMocks(evaluation)
    pulumi.runtime.set_mocks(
        mocks, project="tizi", stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )
    pulumi.runtime.set_all_config(config, secret_keys)

    @pulumi.runtime.test
    def program():
        run()
        stack_resource = pulumi.runtime.settings.get_root_resource()
        outputs = getattr(stack_resource, "outputs", {}) or {}
        return pulumi.Output.from_input(outputs).apply(evaluation.outputs.update)

    program()
    return evaluation


def plaintext_paths(raw: Any, needle: str, path: str = "") -> list[str]:
    """Paths in a wire-form value where ``needle`` appears outside any secret wrapper."""
    if isinstance(raw, dict):
        if raw.get(SECRET_KEY) == SECRET_SIG:
            return []
        return [p for k, v in raw.items() for p in plaintext_paths(v, needle, f"{path}.{k}")]
    if isinstance(raw, list):
        return [p for i, v in enumerate(raw) for p in plaintext_paths(v, needle, f"{path}[{i}]")]
    return [path] if isinstance(raw, str) and needle in raw else []


def is_secret(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get(SECRET_KEY) == SECRET_SIG


def unwrap(value: Any) -> Any:
    """A value with Pulumi's secret wrappers removed (mock inputs keep them)."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value

"""Hostile stack files: every one is refused by ``tizi check`` with short, safe lines.

Each case writes one file and runs the real command line on it.  Every case asserts the
exit code, that a line names the key (or the file) and what is allowed, that no line is
longer than a terminal can show, that nothing raw (escape sequences, a secret, a long
value) reaches the output, and that no traceback does.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, assert_clean_output

LOCAL = yaml.safe_load((REPO / "stacks" / "Pulumi.local.yaml").read_text())
HEALTH = yaml.safe_load((REPO / "stacks" / "Pulumi.health-prod.yaml").read_text())
SECRET = "sk-live-" + "7" * 40
CIPHER = "v1:c2FsdHNhbHQ=:Y2lwaGVydGV4dGNpcGhlcg=="


def stack(base: dict[str, Any] = LOCAL, **changes: Any) -> dict[str, Any]:
    """A copy of a committed stack with ``tizi:<key>`` settings changed (None removes)."""
    document = copy.deepcopy(base)
    for key, value in changes.items():
        full = key if ":" in key else f"tizi:{key.replace('__', '.')}"
        if value is None:
            document["config"].pop(full, None)
        else:
            document["config"][full] = value
    return document


def with_target(base: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(base)
    document["config"]["tizi:targets"][index].update(changes)
    return document


def with_service(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(LOCAL)
    document["config"]["tizi:service"].update(changes)
    return document


def with_env(name: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(LOCAL)
    document["config"]["tizi:service"].setdefault("env", {})[name] = value
    return document


# name -> (document or raw bytes, text that must appear in the output, text that must not)
Case = tuple[dict[str, Any] | bytes, str, str | None]
BILLION_LAUGHS = (
    b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}".encode() + b", *" + chr(97 + i).encode() * 1 + b"]\n"
        for i in range(8)
    )
    + b"config: *i\n"
)
DEEP_FLOW = b"config:\n  tizi:service: " + b"[" * 50_000 + b"]" * 50_000 + b"\n"
DEEP_BLOCK = b"config:\n" + b"".join(b"  " * (i + 1) + f"k{i}:\n".encode() for i in range(200))
CASES: dict[str, Case] = {
    # the file itself
    "duplicate-yaml-key": (b"config:\n  tizi:ministry: a\n  tizi:ministry: b\n", "duplicate key", None),
    "duplicate-top-key": (b"config: {}\nconfig: {}\n", "duplicate key", None),
    "duplicate-bare-and-namespaced": (
        yaml.safe_dump({"config": {**LOCAL["config"], "region": "ma-benguerir"}}).encode(),
        "given twice",
        None,
    ),
    "billion-laughs": (BILLION_LAUGHS, "aliases are not allowed", None),
    "single-alias": (b"x: &x {tizi:ministry: a}\nconfig: *x\n", "aliases are not allowed", None),
    "utf16-with-bom": ("config:\n  tizi:ministry: a\n".encode("utf-16"), "not UTF-8", None),
    "latin1": ("config:\n  tizi:ministry: caf\xe9\n".encode("latin-1"), "not UTF-8", None),
    "binary-garbage": (bytes(range(256)) * 4, "not UTF-8", None),
    "nul-bytes": (b"config:\n  tizi:ministry: a\x00b\n", "cannot read stack file", "\x00"),
    "deep-flow-nesting": (DEEP_FLOW, "nesting deeper than", None),
    "deep-block-nesting": (DEEP_BLOCK, "nesting deeper than", None),
    "oversized-file": (b"config:\n  tizi:ministry: " + b"a" * (1 << 21) + b"\n", "at most", None),
    "a-list-not-a-mapping": (b"- config\n", "YAML mapping", None),
    "config-not-a-mapping": (b"config: [1, 2]\n", "config: must be a mapping", None),
    "numeric-config-key": (b"config:\n  123: x\n", "must be namespace:key", None),
    "empty-config-key": (b"config:\n  '': x\n", "must be namespace:key", None),
    "two-documents": (b"config: {}\n---\nconfig: {}\n", "cannot read stack file", None),
    "broken-yaml": (b"config:\n\t- [\n", "cannot read stack file", None),
    "empty-secure": (stack(apiKeys={"secure": ""}), "not a ciphertext", None),
    "plain-text-secure": (stack(apiKeys={"secure": "my key is " + SECRET}), "not a ciphertext", SECRET),
    "numeric-secure": (stack(apiKeys={"secure": 12345}), "not a ciphertext", None),
    "secure-with-extra-keys": (
        stack(apiKeys={"secure": CIPHER, "plain": SECRET}),
        "not a ciphertext",
        SECRET,
    ),
    # settings that must not be echoed, or only escaped and short
    "huge-value": (stack(ministry="m" * 200_000), "tizi:ministry", "m" * 100),
    "ansi-in-value": (stack(ministry="\x1b[2J\x1b[31mhealth"), "tizi:ministry", "\x1b"),
    "ansi-in-key": (stack(**{"tizi:\x1b[31mred": "x"}), "unknown key", "\x1b"),
    "carriage-return-in-value": (stack(region="ma-benguerir\rOK"), "tizi:region", "\r"),
    "bidi-override-in-value": (stack(ministry="health\u202egnp"), "tizi:ministry", "\u202e"),
    "unknown-key-holding-a-secret": (stack(apiKey=SECRET), "tizi:apiKey", SECRET),
    "unknown-nested-key-holding-a-secret": (with_service(token=SECRET), "tizi:service.token", SECRET),
    "unknown-target-key-holding-a-secret": (with_target(LOCAL, 0, password=SECRET), "password", SECRET),
    "plaintext-api-keys": (stack(apiKeys=SECRET), "must be encrypted", SECRET),
    "trailing-newline-ministry": (stack(ministry="health\n"), "tizi:ministry", None),
    "trailing-newline-region": (stack(region="ma-edge-local\n"), "tizi:region", None),
    "trailing-newline-image": (
        with_service(image="tizi/inference-service:0.1.0\n"),
        "tizi:service.image",
        None,
    ),
    "trailing-newline-site": (with_target(LOCAL, 0, site="ma-edge-local\n"), "targets[0].site", None),
    "trailing-newline-host": (
        with_target(LOCAL, 0, host="unix:///var/run/docker.sock\n"),
        "targets[0].host",
        None,
    ),
    # credentials in env
    "env-db-pass": (with_env("DB_PASS", "x"), "service.env.DB_PASS", None),
    "env-passphrase": (with_env("PULUMI_CONFIG_PASSPHRASE", SECRET), "looks like a secret", SECRET),
    "env-auth-header": (with_env("AUTH_HEADER", SECRET), "looks like a secret", SECRET),
    "env-api-key": (with_env("OPENAI_API_KEY", SECRET), "looks like a secret", SECRET),
    "env-pwd": (with_env("DB_PWD", SECRET), "looks like a secret", SECRET),
    "env-private": (with_env("TLS_PRIVATE", SECRET), "looks like a secret", SECRET),
    "env-url-with-password": (
        with_env("DATABASE_URL", f"postgres://app:{SECRET}@db/x"),
        "credential",
        SECRET,
    ),
    "env-amqp-with-password": (with_env("BROKER", f"amqp://u:{SECRET}@mq:5672"), "credential", SECRET),
    "env-value-a-mapping": (with_env("MODE", {"nested": SECRET}), "string or a number", SECRET),
    "env-name-lowercase": (with_env("mode", "x"), "[A-Z_][A-Z0-9_]*", None),
    "env-name-with-escape": (with_env("A\x1bB", "x"), "service.env", "\x1b"),
    # hosts and namespaces
    "host-leading-dash-ssh": (with_target(LOCAL, 0, host="ssh://-oProxyCommand=id"), "targets[0].host", None),
    "host-leading-dash-user": (with_target(LOCAL, 0, host="ssh://-x@edge"), "targets[0].host", None),
    "host-semicolon": (
        with_target(LOCAL, 0, host="unix:///var/run/docker.sock;rm -rf /"),
        "targets[0].host",
        None,
    ),
    "host-command-substitution": (with_target(LOCAL, 0, host="tcp://$(id):2375"), "targets[0].host", None),
    "host-backticks": (with_target(LOCAL, 0, host="ssh://`id`@edge"), "targets[0].host", None),
    "host-space": (with_target(LOCAL, 0, host="ssh://edge -o x"), "targets[0].host", None),
    "host-http-scheme": (with_target(LOCAL, 0, host="http://edge:2375"), "targets[0].host", None),
    "namespace-kube-system": (with_target(HEALTH, 0, namespace="kube-system"), "system namespace", None),
    "namespace-default": (with_target(HEALTH, 0, namespace="default"), "system namespace", None),
    "namespace-knative-serving": (
        with_target(HEALTH, 0, namespace="knative-serving"),
        "system namespace",
        None,
    ),
    "namespace-kube-public": (with_target(HEALTH, 0, namespace="kube-public"), "system namespace", None),
    "context-leading-dash": (
        with_target(HEALTH, 0, context="--kubeconfig=/etc/x"),
        "targets[0].context",
        None,
    ),
    # collisions
    "edge-targets-same-port": (
        with_target(HEALTH, 2, host=HEALTH["config"]["tizi:targets"][1]["host"]),
        "collides with targets[1]",
        None,
    ),
    "cluster-targets-same-namespace": (
        stack(
            HEALTH,
            targets=[
                *HEALTH["config"]["tizi:targets"],
                {**HEALTH["config"]["tizi:targets"][0], "name": "second"},
            ],
        ),
        "collides with targets[0]",
        None,
    ),
    # absurd quantities
    "service-port-above-65535": (with_service(port=70000), "tizi:service.port", None),
    "host-port-above-65535": (with_target(LOCAL, 0, hostPort=99999), "targets[0].hostPort", None),
    "host-port-negative": (with_target(LOCAL, 0, hostPort=-1), "targets[0].hostPort", None),
    "host-port-privileged": (with_target(LOCAL, 0, hostPort=80), "targets[0].hostPort", None),
    "fifty-thousand-cpus": (stack(resources={"cpu": "50000", "memory": "512Mi"}), "at most 256 CPUs", None),
    "zero-cpu": (stack(resources={"cpu": "0", "memory": "512Mi"}), "tizi:resources.cpu", None),
    "zero-memory": (stack(resources={"cpu": "1", "memory": "0Mi"}), "at least 64Mi", None),
    "absurd-memory": (stack(resources={"cpu": "1", "memory": "999999Ti"}), "at most 1Ti", None),
    "float-memory": (stack(resources={"cpu": "1", "memory": 1.5}), "tizi:resources.memory", None),
    "billion-replicas": (stack(scaling={"min": 1, "max": 10**9}), "tizi:scaling.max", None),
    "boolean-port": (with_service(port=True), "tizi:service.port", None),
    "huge-integer": (with_service(port=10**400), "tizi:service.port", None),
    # legal basis
    "legal-basis-zero-width": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": "\u200b\u200b\u200b\u200b"}),
        "legalBasis.reference",
        "\u200b",
    ),
    "legal-basis-todo": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": "TODO"}),
        "placeholder",
        None,
    ),
    "legal-basis-xxx": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": "xxx-xxx"}),
        "placeholder",
        None,
    ),
    "legal-basis-na": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": "N/A"}),
        "placeholder",
        None,
    ),
    "legal-basis-dashes": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": "------"}),
        "placeholder",
        None,
    ),
    "legal-basis-zeros": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": "0000"}),
        "placeholder",
        None,
    ),
    "legal-basis-number": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": 12345}),
        "legalBasis",
        None,
    ),
    "legal-basis-huge": (
        stack(HEALTH, legalBasis={"kind": "consent", "reference": "A" * 5000}),
        "3-200",
        "A" * 100,
    ),
    # residency whatever the target kind
    "edge-only-sensitive-in-paris": (stack(dataClass="sensitive", region="eu-paris"), "RES-SENSITIVE", None),
    "edge-only-sensitive-fallback-paris": (
        stack(dataClass="sensitive", region="ma-benguerir", fallbackRegions=["eu-paris"]),
        "fallbackRegions[0]",
        None,
    ),
    "edge-only-vital-on-foreign-cloud": (
        stack(dataClass="vital-l2", region="ma-casablanca-oci"),
        "RES-VITAL-L2",
        None,
    ),
    "edge-only-planned-region": (stack(region="ma-dakhla-planned"), "tizi:region", None),
    # types
    "ministry-a-number": (stack(ministry=123), "tizi:ministry", None),
    "region-a-list": (stack(region=["ma-benguerir"]), "tizi:region", None),
    "environment-a-bool": (stack(environment=True), "tizi:environment", None),
    "targets-a-string": (stack(targets="edge"), "tizi:targets", None),
    "targets-empty": (stack(targets=[]), "tizi:targets", None),
    "target-a-string": (stack(targets=["edge"]), "targets[0]", None),
    "target-unknown-kind": (stack(targets=[{"kind": "lambda"}]), "targets[0].kind", None),
    "service-a-list": (stack(service=["x"]), "tizi:service", None),
    "secret-for-a-plain-setting": (stack(region={"secure": CIPHER}), "only apiKeys may be secret", None),
    "secret-inside-a-setting": (
        stack(service={"image": {"secure": CIPHER}}),
        "only apiKeys may be secret",
        None,
    ),
    "languages-unknown-code": (stack(languages=["zz"]), "tizi:languages", None),
    "null-everywhere": (stack(ministry=None, environment=None, region=None), "tizi:ministry", None),
}


def _write(tmp_path: Path, content: dict[str, Any] | bytes) -> Path:
    path = tmp_path / "Pulumi.hostile.yaml"
    data = content if isinstance(content, bytes) else yaml.safe_dump(content, allow_unicode=True).encode()
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_stack_file_is_refused_cleanly(
    tmp_path: Path, name: str, run_tizi: Callable[..., Any]
) -> None:
    content, expected, never = CASES[name]
    path = _write(tmp_path, content)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_tizi("check", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout[:2000]
    assert_clean_output(result.stdout + result.stderr, never)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "check writes nothing"


def test_a_fifo_is_refused_without_hanging(tmp_path: Path, run_tizi: Callable[..., Any]) -> None:
    fifo = tmp_path / "Pulumi.fifo.yaml"
    os.mkfifo(fifo)
    result = run_tizi("check", str(fifo), timeout=20)
    assert result.returncode == 1 and "not a regular file" in result.stdout
    assert_clean_output(result.stdout + result.stderr, None)


def test_a_device_is_refused(run_tizi: Callable[..., Any]) -> None:
    result = run_tizi("check", "/dev/zero", timeout=20)
    assert result.returncode == 1 and "not a regular file" in result.stdout
    assert_clean_output(result.stdout + result.stderr, None)


def test_a_directory_is_a_usage_error(tmp_path: Path, run_tizi: Callable[..., Any]) -> None:
    result = run_tizi("check", str(tmp_path))
    assert result.returncode == 2 and "is a directory" in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)


def test_a_dangling_symlink_is_a_usage_error(tmp_path: Path, run_tizi: Callable[..., Any]) -> None:
    link = tmp_path / "Pulumi.link.yaml"
    link.symlink_to(tmp_path / "missing.yaml")
    result = run_tizi("check", str(link))
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)


def test_an_unreadable_file_is_one_line(
    tmp_path: Path, run_tizi: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from components.sources import stack_file

    path = _write(tmp_path, LOCAL)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(stack_file, "open", refuse, raising=False)
    result = run_tizi("check", str(path))
    assert result.returncode == 1 and "Permission denied" in result.stdout
    assert_clean_output(result.stdout + result.stderr, None)


def test_every_committed_stack_still_passes(run_tizi: Callable[..., Any]) -> None:
    result = run_tizi("check", *sorted(str(p) for p in (REPO / "stacks").glob("Pulumi.*.yaml")))
    assert result.returncode == 0, result.stdout

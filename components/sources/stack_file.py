"""Read a ``Pulumi.<stack>.yaml`` file into what the engine would hand the program.

Offline tools (``tizi check``, ``tizi values``, ``tizi stack new``) and the unit-test
harness read stack files here; the result goes through the same ``decode_config`` as the
program's own Pulumi config.  Secret values are never decrypted: only whether each one
is encrypted matters.

A stack file is input from anyone who can open a pull request, so the reader refuses
what YAML allows but a stack file never needs, before it can hurt: files that are not
regular files (a FIFO would hang the reader), oversized or non-UTF-8 files, duplicate
keys (the engine's YAML reader refuses them too), anchors and aliases (alias expansion
is the billion-laughs attack) and absurd nesting.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.sources.stack_input import PREFIX, StackInput, decode_config

MAX_FILE_BYTES = 1 << 20
#: what ``pulumi config set --secret`` writes: base64 parts joined by colons (``v1:…:…``)
CIPHERTEXT = re.compile(r"[A-Za-z0-9+/=_-]{1,64}(:[A-Za-z0-9+/=_-]{1,4096}){1,4}")
MAX_DEPTH = 32


class StackFileError(ValueError):
    """The file is not a readable Pulumi stack file at all; the message is one line."""


@dataclass(frozen=True)
class EngineConfig:
    """A stack file's config as the engine passes it: ``ns:key`` → string, and the secret keys.

    ``None`` marks an encrypted value (its plaintext needs the passphrase).
    """

    values: dict[str, str | None]
    secret_keys: frozenset[str]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys or deep nesting."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "anchors and aliases are not allowed in stack files", event.start_mark
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.constructor.ConstructorError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_short(str(key))}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _short(text: str, limit: int = 40) -> str:
    """A quoted, escaped, truncated rendering safe to print on a terminal."""
    shown = json.dumps(text[:limit], ensure_ascii=True)
    return shown if len(text) <= limit else f'{shown[:-1]}…" ({len(text)} characters)'


def _read_text(path: Path) -> str:
    try:
        info = os.stat(path)
    except OSError as error:
        raise StackFileError(f"{path}: cannot read stack file: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise StackFileError(f"{path}: not a regular file (a stack file is a YAML file)")
    if info.st_size > MAX_FILE_BYTES:
        raise StackFileError(f"{path}: {info.st_size} bytes; a stack file is at most {MAX_FILE_BYTES} bytes")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise StackFileError(f"{path}: cannot read stack file: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(
            f"{path}: not UTF-8 text (byte {error.start}); save the stack file as UTF-8"
        ) from None


def _yaml_document(path: Path) -> Any:
    text = _read_text(path)
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise StackFileError(
            f"{path}: cannot read stack file: {error.problem or error.context}{where}"
        ) from None
    except (yaml.YAMLError, RecursionError) as error:
        raise StackFileError(f"{path}: cannot read stack file: {type(error).__name__}") from None


def _is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def _check_ciphertexts(path: Path, key: str, value: Any) -> None:
    """Every ``secure:`` value is ciphertext; an empty or hand-written one would be read as a
    secret by nobody (the engine fails to decrypt it, after the preview has started)."""
    if isinstance(value, dict):
        if "secure" in value:
            secure = value["secure"]
            if set(value) != {"secure"} or not isinstance(secure, str) or not CIPHERTEXT.fullmatch(secure):
                raise StackFileError(
                    f"{path}: config key {_short(key)}: the secure: value is not a ciphertext; "
                    "set it with `pulumi config set --secret`"
                )
            return
        for item in value.values():
            _check_ciphertexts(path, key, item)
    elif isinstance(value, list):
        for item in value:
            _check_ciphertexts(path, key, item)


def _holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return _is_encrypted(value) or any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _engine_string(value: Any) -> str:
    """A config value as the engine passes it: scalars as text, structures as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    return str(value)


def engine_config(path: Path) -> EngineConfig:
    """What the engine passes the program for this file; raise StackFileError if unreadable."""
    document = _yaml_document(path)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: a stack file is a YAML mapping with a config: section")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: config: must be a mapping of namespace:key to values")
    values: dict[str, str | None] = {}
    secret_keys: set[str] = set()
    for written_key, value in config.items():
        if not isinstance(written_key, str) or not written_key:
            raise StackFileError(f"{path}: config key {_short(str(written_key))} must be namespace:key")
        # Pulumi puts a key without namespace in the project's namespace (``tizi``)
        full_key = written_key if ":" in written_key else f"{PREFIX}{written_key}"
        if full_key in values:
            raise StackFileError(
                f"{path}: config key {_short(full_key)} is given twice "
                f"({_short(written_key)} means {_short(full_key)})"
            )
        _check_ciphertexts(path, full_key, value)
        if _holds_secret(value):
            secret_keys.add(full_key)
            values[full_key] = None
        else:
            values[full_key] = _engine_string(value)
    return EngineConfig(values=values, secret_keys=frozenset(secret_keys))


def read_stack_file(path: Path) -> StackInput:
    """The ``StackInput`` of a stack file, decoded exactly as the program decodes its config."""
    config = engine_config(path)
    return decode_config(config.values, config.secret_keys)

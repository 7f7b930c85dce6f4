"""API keys: parsed from one encrypted setting, handed to targets as files, never logged.

``tizi:apiKeys`` holds one or more keys separated by commas or newlines, so a rotation
is "add the new key, deploy, move clients, remove the old key, deploy" with both keys
valid in between.  Targets only handle key text inside ``Output.apply`` (values stay
secret in state); validation reduces it to counts and lengths that reveal nothing.
No Pulumi import here: the offline ``tizi`` commands load this module.
"""

from __future__ import annotations

import re

from components.problems import Problem

#: Settings that are secrets: set with ``pulumi config set --secret``, never plain.
SECRET_KEYS = ("apiKeys",)
MAX_KEYS = 8
MIN_KEY_LENGTH = 16
_KEY = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
_SEPARATORS = re.compile(r"[,\n]+")


#: Parts of an environment variable name that mark it as a credential.  Secrets reach
#: containers as files; an env var shows in ``docker inspect``, crash dumps and children.
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "PRIVATE")
_SECRET_PARTS = frozenset({"PASS", "PWD", "AUTH", "CERT", "COOKIE", "SESSION"})


def looks_like_secret(env_name: str) -> bool:
    """True for env names that carry credentials (``DB_PASS``, ``AUTH_HEADER``, ``API_KEY``…)."""
    name = env_name.upper()
    return any(word in name for word in _SECRET_WORDS) or bool(_SECRET_PARTS & set(name.split("_")))


_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]*:[^/\s@]+@")


def carries_credentials(value: str) -> bool:
    """True for values with a password inside a URL (``postgres://app:s3cret@db/x``)."""
    return bool(_URL_CREDENTIALS.search(value))


def split_keys(raw: str) -> list[str]:
    """Keys in the order written, blanks dropped."""
    return [key.strip() for key in _SEPARATORS.split(raw) if key.strip()]


def key_problems(raw: str) -> list[Problem]:
    """Shape problems of the keys, described without ever quoting a key."""
    keys = split_keys(raw)
    problems = []
    if not keys:
        problems.append(Problem("apiKeys", "(redacted)", "must hold at least one key"))
    if len(keys) > MAX_KEYS:
        problems.append(
            Problem("apiKeys", f"({len(keys)} keys, redacted)", f"must hold at most {MAX_KEYS} keys")
        )
    for index, key in enumerate(keys):
        if not _KEY.fullmatch(key):
            problems.append(
                Problem(
                    f"apiKeys[{index}]",
                    f"(redacted, {len(key)} characters)",
                    f"each key must be {MIN_KEY_LENGTH}-256 characters of A-Z a-z 0-9 . _ ~ + / = -",
                )
            )
    if len(set(keys)) != len(keys):
        problems.append(Problem("apiKeys", "(redacted)", "must not repeat a key"))
    return problems


def key_file_name(index: int) -> str:
    """Stable file names: rotation changes contents, the service re-reads the directory."""
    return f"key-{index}"

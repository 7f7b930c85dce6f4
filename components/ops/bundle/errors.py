"""BundleError, and the two helpers every refusal's message is built with.

A bundle arrives from outside, so every refusal is one line an operator can read: the
exception folds newlines, `_show` quotes a hostile value (escaped, capped) and `_reason`
gives an OS error's text alone, the caller naming the path once.
"""

from __future__ import annotations


class BundleError(Exception):
    """The bundle cannot be trusted or used; the message says why, on one line.

    The message is what an operator reads on stderr, so newlines (from docker's stderr, from
    a hostile name) are folded here, once, for every error path.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def _reason(exc: OSError) -> str:
    """The errno text alone ("Permission denied"): the caller names the path once."""
    return exc.strerror or str(exc)


def _show(value: object, limit: int = 80) -> str:
    """A hostile value for a message: repr escapes control characters, the cap bounds it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

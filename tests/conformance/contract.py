"""The OpenAI contract every tizi target serves, as checks any tier can run on its deployment.

Each check takes a ``Target`` (base URL, a valid key, the served model, which payload) and
uses the official ``openai`` Python client, exactly as an application would.  Checks that
only a generative model can pass (streaming, ``max_tokens``, concurrent streams) are not
applicable to the langid payload: ``not_applicable`` says why, and the caller skips them
with that reason.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass

import openai

PROMPT = "Name the capital of Morocco in one word."


@dataclass(frozen=True)
class Target:
    """A deployment to check: ``payload`` is ``llm`` (a generative server) or ``langid``.

    ``host``, when set, is the Host header an ingress routes on (Knative behind Traefik), as a
    client outside the cluster's DNS would send it."""

    name: str
    base_url: str
    key: str
    model: str
    payload: str
    host: str = ""

    def client(self, key: str | None = None, timeout: float = 60) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=key or self.key,
            timeout=timeout,
            max_retries=0,
            default_headers={"Host": self.host} if self.host else None,
        )


def _chat(target: Target, **extra: object) -> openai.types.chat.ChatCompletion:
    return target.client().chat.completions.create(
        model=target.model,
        messages=[{"role": "user", "content": PROMPT}],
        **extra,  # type: ignore[arg-type]
    )


def check_models_list(target: Target) -> None:
    ids = [model.id for model in target.client().models.list()]
    assert target.model in ids, ids


def check_chat_completion(target: Target) -> None:
    completion = _chat(target, temperature=0, max_tokens=16)
    choice = completion.choices[0]
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert completion.model


def check_streaming(target: Target) -> None:
    stream = target.client().chat.completions.create(
        model=target.model, messages=[{"role": "user", "content": PROMPT}], stream=True, max_tokens=16,
        temperature=0, stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) >= 2 and text.strip(), chunks[:3]
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals and finals[-1] in ("stop", "length"), finals
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    if usage:  # servers that honour include_usage send it on the last chunk
        assert usage[-1].completion_tokens >= 1


def check_max_tokens(target: Target) -> None:
    completion = _chat(target, temperature=0, max_tokens=3)
    assert completion.usage is not None and completion.usage.completion_tokens <= 3, completion.usage
    assert completion.choices[0].finish_reason == "length"


def check_temperature_zero_is_repeatable(target: Target) -> None:
    first = _chat(target, temperature=0, max_tokens=12).choices[0].message.content
    second = _chat(target, temperature=0, max_tokens=12).choices[0].message.content
    assert first == second, (first, second)


def check_wrong_key_is_401(target: Target) -> None:
    try:
        target.client(key="tizi-wrong-key-0000000000000000").models.list()
    except openai.AuthenticationError as error:
        assert error.status_code == 401
        return
    raise AssertionError("a wrong key was accepted")


def check_unknown_model_is_404(target: Target) -> None:
    try:
        target.client().chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": PROMPT}], max_tokens=4
        )
    except openai.NotFoundError as error:
        assert error.status_code == 404
        return
    raise AssertionError("an unknown model was served")


def check_malformed_request_is_400(target: Target) -> None:
    try:
        target.client().chat.completions.create(model=target.model, messages="not a list")  # type: ignore[arg-type]
    except openai.BadRequestError as error:
        assert error.status_code in (400, 422)
        return
    except openai.UnprocessableEntityError as error:  # FastAPI servers answer 422 for schema errors
        assert error.status_code == 422
        return
    raise AssertionError("a malformed request was accepted")


def check_eight_concurrent_streams(target: Target) -> None:
    def one(index: int) -> str:
        stream = target.client(timeout=180).chat.completions.create(
            model=target.model, messages=[{"role": "user", "content": f"Count to {index + 2}."}], stream=True,
            max_tokens=8,
        )  # fmt: skip
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(8)))
    assert len(answers) == 8 and all(a.strip() for a in answers), answers


CHECKS: dict[str, Callable[[Target], None]] = {
    "models-list": check_models_list,
    "chat-completion": check_chat_completion,
    "streaming": check_streaming,
    "max-tokens": check_max_tokens,
    "temperature-zero-repeatable": check_temperature_zero_is_repeatable,
    "wrong-key-401": check_wrong_key_is_401,
    "unknown-model-404": check_unknown_model_is_404,
    "malformed-request-400": check_malformed_request_is_400,
    "eight-concurrent-streams": check_eight_concurrent_streams,
}

#: check -> why it does not apply to the langid payload (a language identifier, not a generator)
LANGID_NOT_APPLICABLE = {
    "streaming": "the langid server answers with one language code; it refuses stream=true",
    "max-tokens": "the langid server's answer is one code, whatever max_tokens says",
    "eight-concurrent-streams": "the langid server does not stream",
}


def not_applicable(target: Target, check: str) -> str | None:
    """Why ``check`` does not apply to ``target``'s payload, or None when it does."""
    return LANGID_NOT_APPLICABLE.get(check) if target.payload == "langid" else None

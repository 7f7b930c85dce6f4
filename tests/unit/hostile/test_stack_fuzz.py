"""Property-based fuzzing of the stack reader and the validator (hypothesis).

Whatever the bytes of a stack file or the shape of its settings, tizi answers with a
readable stack or its own error listing problems in safe lines: never another
exception, never a hang.  The budget is ``TIZI_FUZZ_EXAMPLES`` examples per property
(default 200; ``.ci/run`` sets it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.problems import StackError
from components.sources.stack_file import StackFileError, read_stack_file
from components.sources.stack_input import SecretState, StackInput
from components.spec.service import TOP_LEVEL_KEYS
from components.validation import validate_stack

from .conftest import REPO, assert_clean_output

FUZZ = settings(
    max_examples=int(os.environ.get("TIZI_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LOCAL = yaml.safe_load((REPO / "stacks" / "Pulumi.local.yaml").read_text())["config"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=80),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
setting_keys = st.one_of(st.sampled_from(TOP_LEVEL_KEYS), st.text(max_size=20))


def _check_problems(stack: StackInput) -> None:
    try:
        validate_stack(stack)
    except StackError as error:
        assert error.problems
        assert_clean_output(str(error), None)


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes_are_a_stack_or_one_clean_error(tmp_path_factory: Any, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "Pulumi.fuzz.yaml"
    path.write_bytes(data)
    try:
        stack = read_stack_file(path)
    except StackFileError as error:
        assert "\n" not in str(error)
        assert_clean_output(str(error), None)
        return
    _check_problems(stack)


@FUZZ
@given(st.dictionaries(setting_keys, values, max_size=8))
def test_any_settings_validate_or_list_clean_problems(settings_: dict[str, Any]) -> None:
    _check_problems(StackInput(settings=settings_, secret_states={"apiKeys": SecretState.ENCRYPTED}))


@FUZZ
@given(st.sampled_from(sorted(k.removeprefix("tizi:") for k in LOCAL if k != "tizi:apiKeys")), values)
def test_one_mutated_setting_of_a_valid_stack_never_crashes(key: str, value: Any) -> None:
    settings_ = {k.removeprefix("tizi:"): v for k, v in LOCAL.items() if k != "tizi:apiKeys"}
    settings_[key] = value
    _check_problems(StackInput(settings=settings_, secret_states={"apiKeys": SecretState.ENCRYPTED}))


@FUZZ
@given(st.dictionaries(st.text(max_size=30), values, max_size=6))
def test_any_yaml_config_is_read_or_refused(tmp_path_factory: Any, config: dict[str, Any]) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "Pulumi.fuzz.yaml"
    try:
        text = yaml.safe_dump({"config": config}, allow_unicode=True)
    except yaml.YAMLError:
        return
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        stack = read_stack_file(path)
    except StackFileError as error:
        assert_clean_output(str(error), None)
        return
    _check_problems(stack)

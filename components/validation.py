"""One entry point that validates a stack completely: readable input, spec, secrets, residency.

``tizi check`` (on a stack file) and the Pulumi program (on its config) both hand a
``StackInput`` to ``validate_stack``, so a stack file that passes the offline check is
exactly one that previews, and the error text is the same in both places.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.placement import Placement, judge
from components.problems import Problem, StackError
from components.sources.stack_input import SecretState, StackInput
from components.spec.secrets import SECRET_KEYS, key_problems
from components.spec.service import ServiceSpec, read_spec


@dataclass(frozen=True)
class ValidStack:
    """A spec that passed every check, with the placement that allowed it."""

    spec: ServiceSpec
    placement: Placement


def _secret_problems(spec: ServiceSpec, secrets: Mapping[str, SecretState]) -> list[Problem]:
    problems = []
    for name in spec.secret_names:
        if name not in SECRET_KEYS:
            continue
        state = secrets.get(name, SecretState.MISSING)
        if state == SecretState.MISSING:
            problems.append(
                Problem(
                    name, None, f"must be set as a secret: pulumi config set --secret tizi:{name} <value>"
                )
            )
        elif state == SecretState.PLAINTEXT:
            problems.append(
                Problem(
                    name,
                    "(plaintext, redacted)",
                    f"must be encrypted: remove it and run pulumi config set --secret tizi:{name} <value>",
                )
            )
    return problems


def validate_stack(stack: StackInput, api_keys: str | None = None) -> ValidStack:
    """Validate everything or raise one StackError listing every problem.

    ``api_keys`` is the decrypted key setting when the caller has it (the program does;
    offline checks of stack files do not), checked for shape without ever being quoted.
    """
    spec, problems = read_spec(stack.settings)
    problems = [*stack.problems, *problems, *_secret_problems(spec, stack.secret_states)]
    if api_keys is not None:
        problems += key_problems(api_keys)
    reported = frozenset(p.key for p in problems)
    if "dataClass" not in reported:
        placement, refusals = judge(spec, skip_keys=reported)
        problems += refusals
    else:
        placement = Placement(())
    if problems:
        raise StackError(problems)
    return ValidStack(spec, placement)

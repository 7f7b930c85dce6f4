"""tizi's policy pack: residency and container security, enforced on any stack.

A forked stack that bypasses the components still cannot put sensitive data in
eu-paris or run a privileged or root container: ``pulumi preview --policy-pack policies``
stops it.  The rules come from ``components`` (checks.py); nothing is encoded twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: components/

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.rules.residency import DataClass
from policies.checks import placements, residency_violations, security_violations


def check_residency(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    found = [p for r in args.resources for p in placements(r.name, r.resource_type, r.props)]
    for message in residency_violations(found, args.get_config().get("dataClass")):
        report_violation(message, None)


def check_security(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for message in security_violations(args.name, args.resource_type, args.props):
        report_violation(message, None)


PolicyPack(
    name="tizi-policies",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name="tizi-residency",
            description="Every region a stack uses is allowed for its data class (components/rules).",
            validate=check_residency,
            config_schema=PolicyConfigSchema(
                properties={
                    "dataClass": {
                        "type": "string",
                        "enum": [d.value for d in DataClass],
                    }
                },
            ),
        ),
        ResourceValidationPolicy(
            name="tizi-no-root-or-privileged",
            description="Containers run as non-root, unprivileged, without privilege escalation.",
            validate=check_security,
        ),
    ],
)

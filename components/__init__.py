"""tizi: portable deployment of one inference service with Moroccan data-residency placement."""

import warnings

# pulumi-docker 4.0.0 (pinned: see pyproject.toml) imports pkg_resources, whose deprecation
# warning would open every `tizi` command's output; it says nothing about tizi.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

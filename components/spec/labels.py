"""The label keys tizi puts on every resource: the one owner of these names.

The program's label transform, the components, the chart values, the edge plan and the
policy pack all import them from here, so a renamed key cannot leave one reader behind.
"""

from __future__ import annotations

LABEL_PREFIX = "tizi.ma/"
MINISTRY_LABEL = "tizi.ma/ministry"
ENVIRONMENT_LABEL = "tizi.ma/env"
DATA_CLASS_LABEL = "tizi.ma/data-class"
REGION_LABEL = "tizi.ma/region"
#: which target of the stack a resource belongs to (several targets can share a host)
TARGET_LABEL = "tizi.ma/target"
#: what an edge container is (the service today; the gateway joins it)
COMPONENT_LABEL = "org.tizi.component"

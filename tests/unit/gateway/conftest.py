"""The gateway package lives in the image's source tree (service/gateway), not in tizi's."""

import tests.gateway_support  # noqa: F401  (puts service/gateway on sys.path)

"""tizi's gateway: Envoy in front of any payload, configured from tizi's settings and key files.

Envoy does the proxying (keys, per-key limits and metrics, TLS, streaming); this package only
turns two inputs, a settings file written by tizi and a directory of key files, into Envoy's
configuration, and keeps Envoy on the current one without a restart.
"""

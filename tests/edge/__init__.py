"""Edge tier: real Docker engines (the default one and the simulated ssh:// edge site)."""

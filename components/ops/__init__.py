"""Operating tizi: the engine driven from Python, recovery after interruption, offline bundles."""

"""Target kinds (``kinds``: one profile each, one table) and one component module per kind.

``kinds`` is pure data and imports no Pulumi; the component modules do, and are imported
only by the program, through the profile's ``component`` reference.
"""

"""tizi's reference inference service: Moroccan-aware language identification, OpenAI-shaped."""

__version__ = "0.1.0"

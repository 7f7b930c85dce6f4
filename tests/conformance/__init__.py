"""The OpenAI contract, checked with the official client against any tizi deployment."""

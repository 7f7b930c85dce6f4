"""The tizi policy pack (run by the Pulumi engine from this folder)."""

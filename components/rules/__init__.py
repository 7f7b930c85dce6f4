"""Residency rules and the region catalogue they read: data plus pure functions, no Pulumi."""

"""Tests for the Helm chart charts/inference-service."""

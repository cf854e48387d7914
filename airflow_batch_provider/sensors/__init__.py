"""Sensors of the Azure Batch provider."""

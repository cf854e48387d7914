"""Triggers of the Azure Batch provider."""

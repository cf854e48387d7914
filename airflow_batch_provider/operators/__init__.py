"""Operators of the Azure Batch provider."""

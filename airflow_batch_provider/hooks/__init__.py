"""Hooks of the Azure Batch provider: Batch, Blob Storage, and the connection fields they share."""

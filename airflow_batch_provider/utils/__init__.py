"""Utils of the Azure Batch provider."""

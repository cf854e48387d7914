"""Links of the Azure Batch provider."""

"""A local Azure Batch emulator: the Batch data-plane REST API over HTTP, running tasks as local processes.

Layout, after moto: ``models`` hold state and the service's rules, ``routes`` parse HTTP and shape
responses, ``scheduler`` places tasks on node slots and ``runner`` executes them as processes.
"""

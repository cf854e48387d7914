"""The emulated account's state and the service's rules, one module per resource (after moto)."""

"""Helpers shared by the test packages: a stand-in task instance and loading the example DAGs."""

"""Well-known fake secrets the tests use for passwords of accounts on emulated nodes."""

#: The password of the ``task-user`` account every prepared pool defines (not a real secret).
BATCH_TEST_PASSWORD = "kt#_gahr!@aGERDXA"

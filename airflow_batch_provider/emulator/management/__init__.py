"""The Azure Resource Manager (management-plane) subset the emulator serves: Batch application packages.

Application packages are created through Resource Manager, not the Batch data plane, so the emulator
serves a second endpoint, over HTTPS with a generated local CA (see :mod:`.tls`), with the routes of
``azure.mgmt.batch``'s ``application`` and ``application_package`` operations. ``models`` holds the
state and rules (shared with the data plane, which lists applications and installs packages on nodes),
``routes`` the HTTP shapes and ``app`` authentication and errors.
"""

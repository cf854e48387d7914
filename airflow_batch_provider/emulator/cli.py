"""``airflow-batch-emulator``: serve the local Azure Batch emulator, like Azurite serves Storage."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:  # the [emulator] extra: without it, one line saying how to get it instead of a traceback
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ModuleNotFoundError as missing:
    raise SystemExit(
        f"airflow-batch-emulator needs {missing.name}, which is not installed: "
        "pip install 'airflow-batch-provider[emulator]'"
    ) from None

from airflow_batch_provider.emulator.faults import ALL_KINDS, plan_from_options
from airflow_batch_provider.emulator.models.account import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, EmulatorSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 10300


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-batch-emulator",
        description=(
            "A local Azure Batch service: the Batch REST API over HTTP, running task command lines as "
            "local processes. Point azure.batch.BatchClient at it with the account name and key below."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--account-name", default=DEV_ACCOUNT_NAME, help="Batch account name (default: %(default)s)"
    )
    parser.add_argument(
        "--account-key", default=DEV_ACCOUNT_KEY, help="base64 Shared Key (default: the well-known dev key)"
    )
    parser.add_argument(
        "--storage-connection-string",
        default=None,
        help="connection string of the auto-storage account, e.g. Azurite's (for autoStorageContainerName)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where simulated nodes keep their files (default: a temporary directory, removed at exit)",
    )
    parser.add_argument(
        "--applications-dir",
        type=Path,
        default=None,
        help="application packages, laid out as <dir>/<applicationId>/<version>.zip",
    )
    parser.add_argument(
        "--step-delay",
        type=float,
        default=0.02,
        help="seconds each simulated transition takes, e.g. node creating -> starting (default: %(default)s)",
    )
    parser.add_argument(
        "--schedule-interval-scale",
        type=float,
        default=1.0,
        help="multiplies job schedules' recurrenceInterval and startWindow, e.g. 0.01 runs a PT1M "
        "recurrence every 0.6 s (default: %(default)s)",
    )
    parser.add_argument(
        "--container-engine",
        default=None,
        help="the OCI engine that runs container tasks, a command or path (default: podman, else docker)",
    )
    parser.add_argument(
        "--core-quota", type=int, default=500, help="dedicated vCPU quota (default: %(default)s)"
    )
    parser.add_argument(
        "--low-priority-core-quota", type=int, default=500, help="Spot vCPU quota (default: %(default)s)"
    )
    parser.add_argument(
        "--pool-quota", type=int, default=100, help="pools per account (default: %(default)s)"
    )
    parser.add_argument(
        "--active-job-quota", type=int, default=300, help="jobs not yet completed (default: %(default)s)"
    )
    parser.add_argument(
        "--subnet",
        action="append",
        default=[],
        metavar="SUBNET_ID",
        help="a virtual network subnet resource id pools may join (networkConfiguration.subnetId); "
        "repeat for more. Pools naming any other subnet are refused, as the service refuses a subnet "
        "it cannot find",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    management = parser.add_argument_group(
        "application packages (management plane)",
        "Serve the Azure Resource Manager routes for Batch applications and application packages over "
        "HTTPS on a second port, for azure.mgmt.batch.BatchManagementClient with any Entra ID token. "
        "Needs --storage-connection-string (packages are uploaded to that storage account).",
    )
    management.add_argument(
        "--management-port",
        type=int,
        default=None,
        help="HTTPS port of the management endpoint (off when unset)",
    )
    management.add_argument(
        "--https-port",
        type=int,
        default=None,
        help="serve the Batch data plane over HTTPS on this port too, where it also accepts Entra ID tokens "
        "of the emulator's token endpoint (audience https://batch.core.windows.net/); off when unset",
    )
    management.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        help="PEM certificate (chain) for the HTTPS endpoints (default: generated, signed by a local CA "
        "written to <state-dir>/management/tls/management-ca.pem)",
    )
    management.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    faults = parser.add_argument_group(
        "fault injection",
        "Fail a seeded fraction of requests, to test retries and idempotency. Change the plan at run time "
        "with PUT /_emulator/faults (JSON, signed with the Shared Key like any Batch request).",
    )
    faults.add_argument(
        "--fault-rate", type=float, default=0.0, help="fraction of requests to fault, 0..1 (default: 0)"
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of the fault sequence")
    faults.add_argument(
        "--fault-kinds",
        default=",".join(ALL_KINDS),
        help="comma-separated kinds to pick from: 500, 503, 429, reset, latency, lost (default: all)",
    )
    faults.add_argument(
        "--fault-latency", type=float, default=0.25, help="seconds a latency fault adds (default: 0.25)"
    )
    faults.add_argument(
        "--fault-retry-after", type=float, default=1.0, help="Retry-After seconds of 429/503 (default: 1)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import uvicorn

    from airflow_batch_provider.emulator.app import create_app

    settings = EmulatorSettings(
        account_name=args.account_name,
        account_key=args.account_key,
        state_dir=args.state_dir,
        storage_connection_string=args.storage_connection_string,
        applications_dir=args.applications_dir,
        step_delay=args.step_delay,
        dedicated_core_quota=args.core_quota,
        low_priority_core_quota=args.low_priority_core_quota,
        pool_quota=args.pool_quota,
        active_job_quota=args.active_job_quota,
        known_subnets=tuple(args.subnet),
        schedule_interval_scale=args.schedule_interval_scale,
        container_engine=args.container_engine,
    )
    try:
        fault_plan = plan_from_options(
            args.fault_rate,
            args.fault_seed,
            args.fault_kinds,
            latency=args.fault_latency,
            retry_after=args.fault_retry_after,
        )
    except ValueError as err:
        print(f"airflow-batch-emulator: invalid fault options: {err}", file=sys.stderr)
        return 2
    if args.management_port is not None and args.applications_dir is not None:
        print(
            "airflow-batch-emulator: use --applications-dir or --management-port, not both", file=sys.stderr
        )
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("airflow-batch-emulator: give both --tls-cert and --tls-key, or neither", file=sys.stderr)
        return 2
    display_host = f"[{args.host}]" if ":" in args.host else args.host
    print("Azure Batch emulator (airflow-batch-provider)")
    print(f"  Endpoint:     http://{display_host}:{args.port}")
    print(f"  Account name: {settings.account_name}")
    print(f"  Account key:  {settings.account_key}")
    if settings.account_key == DEV_ACCOUNT_KEY:
        print("  (well-known development credentials: for local use only)")
    if settings.storage_connection_string:
        print("  Auto-storage: configured")
    if not is_loopback(args.host):
        print(
            f"WARNING: listening on {args.host}, which is reachable from other machines. The emulator runs "
            "task command lines as the current user: anyone who can reach it and knows the key can run "
            "commands on this machine.",
            file=sys.stderr,
        )
    if fault_plan.rate > 0:
        print(
            f"  Faults:       {fault_plan.rate:.0%} of requests ({', '.join(fault_plan.kinds)}), "
            f"seed {args.fault_seed}"
        )
    if args.management_port is None and args.https_port is None:
        sys.stdout.flush()
        uvicorn.run(
            create_app(settings, faults=fault_plan), host=args.host, port=args.port, log_level=args.log_level
        )
        return 0
    return _serve_with_tls(args, settings, fault_plan, display_host)


def _serve_with_tls(args: Any, settings: EmulatorSettings, fault_plan: Any, display_host: str) -> int:
    """Serve the data plane and its HTTPS companions (management, data plane over TLS) on one loop."""
    import uvicorn

    from airflow_batch_provider.emulator.app import create_app
    from airflow_batch_provider.emulator.identity import TokenIssuer, create_identity_app, with_identity
    from airflow_batch_provider.emulator.management.app import create_management_app
    from airflow_batch_provider.emulator.management.models import ApplicationBackend
    from airflow_batch_provider.emulator.management.server import (
        CompanionServer,
        management_config,
        serve_together,
        tls_files,
    )

    scratch = None if args.state_dir else Path(tempfile.mkdtemp(prefix="batch-emulator-management-"))
    root = (args.state_dir if args.state_dir else Path(str(scratch))) / "management"
    try:
        tls = tls_files(root, args.host, args.tls_cert, args.tls_key)
        issuer = TokenIssuer()
        identity = create_identity_app(issuer)
        backend = None
        authority_port = args.management_port or args.https_port
        if args.https_port is not None:
            print(f"  HTTPS:        https://{display_host}:{args.https_port} (Shared Key or Entra ID tokens)")
        if args.management_port is not None:
            backend = ApplicationBackend(settings.account_name, root, settings.storage_connection_string)
            print(f"  Management:   https://{display_host}:{args.management_port} (Resource Manager subset)")
        print(f"  CA to trust:  {tls.ca_path}")
        print(
            f"  Entra ID:     authority_host https://{display_host}:{authority_port} "
            "(client credentials; any client id and secret)"
        )
        if scratch is not None:
            print("  (a new CA each start: pass --state-dir to keep one across restarts)")
        if backend is not None and not settings.storage_connection_string:
            print("  (no auto-storage: application package versions cannot be created)")
        sys.stdout.flush()
        app = create_app(settings, faults=fault_plan, applications=backend, token_issuer=issuer)
        data_plane = uvicorn.Server(
            uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)
        )
        companions = []
        if backend is not None:
            served = with_identity(create_management_app(backend, issuer), identity)
            config = management_config(served, args.host, args.management_port, tls, args.log_level)
            companions.append(CompanionServer(config))
        if args.https_port is not None:
            served = with_identity(app, identity)
            config = management_config(served, args.host, args.https_port, tls, args.log_level)
            companions.append(CompanionServer(config))
        # The data plane's server handles Ctrl-C and, once shut down, re-raises it: that is the exit.
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_together(data_plane, *companions))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

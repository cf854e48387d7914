"""``airflow-batch-emulator``: serve the local Azure Batch emulator, like Azurite serves Storage."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

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
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
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
    )
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
    sys.stdout.flush()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The Azure CLI in its own cached virtualenv, and running ``az`` against one Batch account."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The azure-cli release the conformance run installs (override with ``--cli-version``).
AZURE_CLI_VERSION = "2.91.0"
DEFAULT_VENV = Path(".conformance/cli-venv")


def ensure_cli(venv: Path, version: str) -> Path:
    """The ``az`` executable of ``venv``, installing ``azure-cli==version`` there first if needed."""
    az = venv / "bin" / "az"
    python = venv / "bin" / "python"
    if az.exists() and _installed_version(python) == version:
        return az
    print(f"installing azure-cli {version} into {venv} (a few minutes, once)", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"azure-cli=={version}"], check=True)
    return az


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('azure-cli'))"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


#: urllib3's debug line for each request ``az --debug`` makes.
_HTTP_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
#: Shared Key signatures (``SharedKey account:signature``) never reach the results.
_SIGNATURE = re.compile(r"(SharedKey [^:\s]+:)\S+")


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class CliRun:
    """What ``az --debug`` did: its exit code, its HTTP exchanges and its error lines."""

    returncode: int
    exchanges: list[Exchange]
    error: str


class CliError(Exception):
    """``az`` exited non-zero; the message is its error output (never the account key)."""


@dataclass
class BatchAccountCli:
    """Runs ``az batch ...`` against one account, authenticated by flags or by environment variables.

    The flags are ``--account-endpoint/--account-name/--account-key``; the environment variables
    ``AZURE_BATCH_ENDPOINT/AZURE_BATCH_ACCOUNT/AZURE_BATCH_ACCESS_KEY``. ``az`` runs with a private
    configuration directory, so a user's own login and defaults never leak into the run.
    """

    az: Path
    endpoint: str
    account_name: str
    account_key: str = field(repr=False)
    #: ``az``'s private configuration directory (created on first use).
    config_dir: Path = field(default=Path(".conformance/az-config"))

    def run(self, args: list[str], *, auth: str = "flags", timeout: float = 120.0) -> Any:
        """Run ``az <args> --output json``; the parsed JSON output (``None`` when it prints nothing)."""
        completed = self._invoke([*args, "--output", "json"], auth, timeout)
        if completed.returncode != 0:
            raise CliError(self._redact(completed.stderr.strip() or f"exit code {completed.returncode}"))
        output = completed.stdout.strip()
        return json.loads(output) if output else None

    def exchanges(self, args: list[str], *, auth: str = "flags", timeout: float = 120.0) -> CliRun:
        """Run ``az <args> --debug``: the HTTP exchanges it made and its error, whether or not it failed."""
        completed = self._invoke([*args, "--debug"], auth, timeout)
        requests = [
            Exchange(match["method"], match["path"], int(match["status"]))
            for match in _HTTP_LINE.finditer(completed.stderr)
        ]
        errors = [line for line in completed.stderr.splitlines() if line.startswith("ERROR:")]
        return CliRun(completed.returncode, requests, self._redact("\n".join(errors)))

    def _invoke(self, args: list[str], auth: str, timeout: float) -> subprocess.CompletedProcess[str]:
        environment = self._environment()
        command = [str(self.az), *args]
        if auth == "flags":
            command += ["--account-endpoint", self.endpoint, "--account-name", self.account_name]
            command += ["--account-key", self.account_key]
        elif auth == "env":
            environment.update(
                AZURE_BATCH_ENDPOINT=self.endpoint,
                AZURE_BATCH_ACCOUNT=self.account_name,
                AZURE_BATCH_ACCESS_KEY=self.account_key,
            )
        else:
            raise ValueError(f"auth must be 'flags' or 'env', not {auth!r}")
        return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)

    def _environment(self) -> dict[str, str]:
        """The caller's environment, with ``az`` kept private, quiet and free of telemetry."""
        environment = {
            **os.environ,
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            "AZURE_LOGGING_ENABLE_LOG_FILE": "false",
        }
        for name in ("AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY"):
            environment.pop(name, None)
        return environment

    def _redact(self, text: str) -> str:
        return _SIGNATURE.sub(r"\1***", text.replace(self.account_key, "***"))

    def version(self) -> str:
        """The azure-cli version, as ``az version`` reports it."""
        completed = subprocess.run(
            [str(self.az), "version", "--output", "json"],
            capture_output=True,
            text=True,
            env=self._environment(),
        )
        if completed.returncode != 0:
            return "unknown"
        return str(json.loads(completed.stdout).get("azure-cli", "unknown"))

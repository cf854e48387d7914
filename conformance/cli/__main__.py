"""Drive ``az batch`` against a fresh emulator and Azurite; write the results; exit 1 on any failure.

python -m conformance.cli --results build/conformance/cli.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from airflow_batch_provider.testing import LocalAzureStack
from conformance.cli.azure_cli import (
    AZURE_CLI_VERSION,
    DEFAULT_VENV,
    BatchAccountCli,
    CliError,
    ensure_cli,
)
from conformance.cli.steps import Context, Step, steps

RETRY_PAUSE = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.cli", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("build/conformance/cli.json"))
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="where azure-cli is installed")
    parser.add_argument("--cli-version", default=AZURE_CLI_VERSION, help="the azure-cli release to use")
    options = parser.parse_args(argv)

    az = ensure_cli(options.venv, options.cli_version)
    # ``az`` may still be writing its logs as the directory goes: tolerate that at cleanup.
    scratch = tempfile.TemporaryDirectory(prefix="cli-conformance-", ignore_cleanup_errors=True)
    with LocalAzureStack() as stack, scratch as workdir:
        batch = stack.batch
        config_dir = Path(workdir) / "az-config"
        cli = BatchAccountCli(az, batch.endpoint, batch.account_name, batch.account_key, config_dir)
        suffix = uuid.uuid4().hex[:8]
        context: Context = {
            "pool": f"cli-pool-{suffix}",
            "json_pool": f"cli-json-pool-{suffix}",
            "job": f"cli-job-{suffix}",
            "schedule": f"cli-schedule-{suffix}",
            "task": "cli-task",
            "json_task": "cli-json-task",
            "listed_task": "cli-listed-task",
            "workdir": workdir,
        }
        results = [run_step(cli, step, context) for step in steps(context)]
        version = cli.version()
    write_results(options.results, version, results)
    failed = [result for result in results if result["outcome"] != "passed"]
    passed = len(results) - len(failed)
    print(f"azure-cli {version}: {passed} of {len(results)} commands passed; results in {options.results}")
    return 1 if failed else 0


def run_step(cli: BatchAccountCli, step: Step, context: Context) -> dict[str, str]:
    """Run one step (retrying up to ``step.until`` seconds) and say how it went."""
    json_file = Path(context["workdir"]) / f"{step.name.replace(' ', '-')}.json"
    if step.json_file is not None:
        json_file.write_text(json.dumps(_fill(step.json_file, context)))
    args = [arg.format(**context, json_file=json_file) for arg in shlex.split(step.command)]
    deadline = time.monotonic() + step.until
    while True:
        try:
            note = _attempt(cli, step, args, context)
            failure = ""
            break
        except (CliError, AssertionError) as error:
            failure = f"{type(error).__name__}: {error}" if isinstance(error, AssertionError) else str(error)
            if time.monotonic() >= deadline:
                break
            time.sleep(RETRY_PAUSE)
    outcome = "failed" if failure else "passed"
    print(f"{outcome:>6}  az batch {step.name}" + (f"\n        {failure}" if failure else ""), flush=True)
    return {"name": f"az batch {step.name}", "outcome": outcome, "detail": failure or note}


def _attempt(cli: BatchAccountCli, step: Step, args: list[str], context: Context) -> str:
    """Run and check ``step`` once; a note for the results (empty unless the CLI has a known defect)."""
    if step.cli_defect is None:
        output = cli.run(args, auth=step.auth)
        step.check(output, context)
        context.update(step.save(output))
        return ""
    run = cli.exchanges(args, auth=step.auth)
    if run.returncode == 0 or step.cli_defect not in run.error:
        got = run.error or "success"
        raise AssertionError(f"expected the known CLI defect {step.cli_defect!r}; got {got}")
    step.check(run.exchanges, context)
    return f"the emulator answered; azure-cli then fails on its own: {step.cli_defect}"


def _fill(value: Any, context: Context) -> Any:
    """``value`` with ``{placeholders}`` in its strings replaced from ``context``."""
    if isinstance(value, dict):
        return {key: _fill(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, context) for item in value]
    return value.format(**context) if isinstance(value, str) and "{" in value else value


def write_results(path: Path, version: str, results: list[dict[str, str]]) -> None:
    """The shared results file: ``{"client", "version", "results": [{name, outcome, detail}]}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"client": "azure-cli", "version": version, "results": results}
    path.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())

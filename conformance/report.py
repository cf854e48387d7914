"""``python -m conformance.report``: write ``docs/emulator-conformance.md`` from every client's results.

Reads ``build/conformance/<client>.json`` for each client in :data:`CLIENTS` (a missing file shows the
client as "not run") and lists, per client, each test or command as passed, failed (with the error)
or not emulated (a feature the emulator documents as not emulated). Exits 1 when a client we did not
write has a failure that is not a documented not-emulated feature, so CI notices a regression.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from conformance.results import RESULTS_DIR, ClientResults, Result

REPORT = Path("docs") / "emulator-conformance.md"


@dataclass(frozen=True)
class Client:
    """A client in the report: its results file, how to rerun it alone, and whether we wrote it."""

    key: str
    title: str
    target: str
    outside: bool


CLIENTS = (
    Client(
        "sdk",
        "azure-batch's own test suite (sdist tests/test_batch.py, sync and async)",
        "conformance-sdk",
        True,
    ),
    Client("cli", "Azure CLI (`az batch`)", "conformance-cli", True),
    Client("emulator", "The project's emulator tests (`tests/emulator`)", "conformance-emulator", False),
)
_OUTCOME = {"passed": "passed", "failed": "**failed**", "not_emulated": "not emulated"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _section(client: Client, results: ClientResults | None) -> list[str]:
    lines = [f"## {client.title}", ""]
    if results is None:
        return [
            *lines,
            f"Not run (no `{RESULTS_DIR / client.key}.json`; `make {client.target}` writes it).",
            "",
        ]
    counts = {outcome: sum(r.outcome == outcome for r in results.results) for outcome in _OUTCOME}
    lines += [
        f"Version {results.version}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['not_emulated']} not emulated, of {len(results.results)}. "
        f"Rerun alone: `make {client.target}`.",
        "",
    ]
    shown = results.results if client.outside else [r for r in results.results if r.outcome != "passed"]
    if not client.outside:
        lines += ["Only the tests that did not pass are listed.", ""] if shown else ["All passed.", ""]
    if shown:
        lines += ["| Test or command | Outcome | Detail |", "|---|---|---|"]
        lines += [f"| `{_cell(r.name)}` | {_OUTCOME[r.outcome]} | {_cell(r.detail)} |" for r in shown]
        lines.append("")
    return lines


def render(results: dict[str, ClientResults | None]) -> str:
    lines = [
        "# Emulator conformance",
        "",
        "Clients the project did not write, run against the local Batch emulator. Regenerate this page with",
        "`make conformance` (it runs every client, then `python -m conformance.report`).",
        '"Not emulated" means the emulator answered 501 `NotImplemented` for a feature listed as not',
        "emulated in the README.",
        "",
    ]
    for client in CLIENTS:
        lines += _section(client, results.get(client.key))
    return "\n".join(lines).rstrip() + "\n"


def unexpected_failures(results: dict[str, ClientResults | None]) -> list[tuple[str, Result]]:
    """Failures of outside clients that are not documented not-emulated features."""
    return [
        (client.key, result)
        for client in CLIENTS
        if client.outside and (found := results.get(client.key)) is not None
        for result in found.results
        if result.outcome == "failed"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.report", description=__doc__)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output", type=Path, default=REPORT)
    options = parser.parse_args(argv)
    results = {
        client.key: ClientResults.read(path)
        if (path := options.results_dir / f"{client.key}.json").exists()
        else None
        for client in CLIENTS
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(render(results), encoding="utf-8")
    print(f"wrote {options.output}")
    failures = unexpected_failures(results)
    for key, result in failures:
        print(f"{key}: {result.name} failed: {result.detail}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

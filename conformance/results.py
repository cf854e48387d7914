"""One client's conformance results: ``build/conformance/<client>.json``, and pytest's JUnit XML into it.

The file every client writes::

    {"client": "...", "version": "...",
     "results": [{"name": "...", "outcome": "passed" | "failed" | "not_emulated", "detail": "..."}]}

A test that fails only because the emulator answered 501 ``NotImplemented`` (a feature documented as
not emulated) is ``not_emulated``; its detail names the feature.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Outcome = Literal["passed", "failed", "not_emulated"]
#: Where every client's results file goes, relative to the repository root.
RESULTS_DIR = Path("build") / "conformance"

#: How the emulator's 501 answer shows up in an SDK exception's text.
_NOT_IMPLEMENTED = re.compile(r"(?:Code: |\(|\")NotImplemented\b")
_NOT_IMPLEMENTED_MESSAGE = re.compile(
    r"([A-Z][\w ]+? (?:are|is) not supported by the local Batch emulator\.)"
)


@dataclass(frozen=True)
class Result:
    name: str
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class ClientResults:
    client: str
    version: str
    results: list[Result]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "client": self.client,
            "version": self.version,
            "results": [asdict(r) for r in self.results],
        }
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ClientResults:
        document = json.loads(path.read_text(encoding="utf-8"))
        results = [Result(r["name"], r["outcome"], r.get("detail", "")) for r in document["results"]]
        return cls(document["client"], document["version"], results)


def from_junit(path: Path, client: str, version: str) -> ClientResults:
    """The results of one pytest run, from its ``--junitxml`` file (skipped tests are left out)."""
    results = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        module = case.get("classname", "")
        full_name = f"{module}::{name}" if module else name
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            continue
        if problem is None:
            results.append(Result(full_name, "passed"))
            continue
        text = "\n".join(part for part in (problem.get("message", ""), problem.text or "") if part)
        results.append(_failure(full_name, text))
    return ClientResults(client, version, results)


def _failure(name: str, text: str) -> Result:
    if _NOT_IMPLEMENTED.search(text):
        feature = _NOT_IMPLEMENTED_MESSAGE.search(text)
        return Result(name, "not_emulated", feature.group(1) if feature else "501 NotImplemented")
    return Result(name, "failed", _summary(text))


_NOISE = ("RequestId:", "Time:", "Code:", "Message:", "Exception Details:")


def _summary(text: str, limit: int = 400) -> str:
    """The error line of a failure (pytest's ``E ...`` lines), short enough for a table cell."""
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    # Drop the request bookkeeping azure-core repeats in every error (ids and times change each run).
    lines = [line for line in lines if line and not line.startswith(_NOISE)]
    lines = list(dict.fromkeys(lines))
    summary = " ".join(lines) if lines else text.strip().splitlines()[0] if text.strip() else "failed"
    summary = re.sub(r"\s+", " ", summary)
    return summary if len(summary) <= limit else summary[: limit - 1] + "…"

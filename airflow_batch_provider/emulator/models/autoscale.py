"""An interpreter for the subset of the Batch autoscale formula language pools commonly use.

Statements separated by ``;`` assign service variables (``$TargetDedicatedNodes``,
``$TargetLowPriorityNodes``, ``$NodeDeallocationOption``) or local ones. Expressions support numbers,
strings, ``+ - * / %``, comparisons, ``&& || !``, ``cond ? a : b``, the functions ``max min avg sum
count len ceil floor round abs``, and sampled system variables such as ``$PendingTasks.GetSample(1)``
or ``$ActiveTasks.GetSample(TimeInterval_Minute * 5)``. Samples always return the current value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Value = Any  # float | str | list[float] | Sample


class FormulaError(ValueError):
    """The formula does not parse or cannot be evaluated; ``code`` is the service's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Sample:
    """A system metric; the emulator keeps one sample, the current value, for any requested window."""

    name: str
    value: float

    def call(self, method: str, args: list[Value]) -> Value:
        lowered = method.lower()
        if lowered == "getsample":
            count = 1
            if args and isinstance(args[0], (int, float)) and args[0] < 1000:
                count = max(1, int(args[0]))
            return [self.value] * count
        if lowered == "getsamplepercent":
            return 100.0
        if lowered == "count":
            return 1.0
        if lowered in ("getsampleperiod", "historybegintime"):
            return 0.0
        raise FormulaError("AutoScalingFormulaEvaluationError", f"Unknown method {self.name}.{method}()")


SERVICE_VARIABLES = ("$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption")
_SAMPLED = (
    "$PendingTasks",
    "$ActiveTasks",
    "$RunningTasks",
    "$SucceededTasks",
    "$FailedTasks",
    "$CPUPercent",
    "$MemoryBytes",
    "$DiskBytes",
    "$NetworkInBytes",
    "$NetworkOutBytes",
)
_CONSTANTS = {
    "timeinterval_zero": 0.0,
    "timeinterval_100ns": 1e-7,
    "timeinterval_microsecond": 1e-6,
    "timeinterval_millisecond": 1e-3,
    "timeinterval_second": 1.0,
    "timeinterval_minute": 60.0,
    "timeinterval_hour": 3600.0,
    "timeinterval_day": 86400.0,
    "timeinterval_week": 604800.0,
}
_DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<string>\"[^\"]*\"|'[^']*')|(?P<name>\$?[A-Za-z_]\w*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:;=(),.]))"
)


def _flatten(args: list[Value]) -> list[float]:
    out: list[float] = []
    for arg in args:
        if isinstance(arg, list):
            out.extend(float(item) for item in arg)
        elif isinstance(arg, Sample):
            out.append(arg.value)
        elif isinstance(arg, (int, float)):
            out.append(float(arg))
        else:
            raise FormulaError("AutoScalingFormulaEvaluationError", f"{arg!r} is not a number")
    return out


def _aggregate(name: str, reducer: Callable[[list[float]], float]) -> Callable[[list[Value]], Value]:
    def function(args: list[Value]) -> Value:
        values = _flatten(args)
        if not values:
            raise FormulaError("AutoScalingFormulaEvaluationError", f"{name}() needs at least one value")
        return reducer(values)

    return function


def _scalar(name: str, op: Callable[[float], float]) -> Callable[[list[Value]], Value]:
    def function(args: list[Value]) -> Value:
        if len(args) != 1:
            raise FormulaError("AutoScalingFormulaEvaluationError", f"{name}() takes one argument")
        value = args[0]
        if isinstance(value, list):
            return [op(float(item)) for item in value]
        return op(float(_flatten([value])[0]))

    return function


_FUNCTIONS: dict[str, Callable[[list[Value]], Value]] = {
    "max": _aggregate("max", max),
    "min": _aggregate("min", min),
    "avg": _aggregate("avg", lambda values: sum(values) / len(values)),
    "sum": _aggregate("sum", sum),
    "count": lambda args: float(len(_flatten(args))),
    "len": lambda args: float(len(_flatten(args))),
    "ceil": _scalar("ceil", lambda value: float(math.ceil(value))),
    "floor": _scalar("floor", lambda value: float(math.floor(value))),
    "round": _scalar("round", lambda value: float(math.floor(value + 0.5))),
    "abs": _scalar("abs", abs),
}


def _binary(op: str, left: Value, right: Value) -> Value:
    if isinstance(left, list) or isinstance(right, list):
        lefts = left if isinstance(left, list) else None
        rights = right if isinstance(right, list) else None
        size = len(lefts or rights or [])
        return [
            _binary(op, lefts[i] if lefts is not None else left, rights[i] if rights is not None else right)
            for i in range(size)
        ]
    if isinstance(left, Sample) or isinstance(right, Sample):
        raise FormulaError(
            "AutoScalingFormulaEvaluationError",
            "A sampled system variable must be read with GetSample() before arithmetic.",
        )
    if op == "==":
        return float(left == right)
    if op == "!=":
        return float(left != right)
    if isinstance(left, str) or isinstance(right, str):
        if op == "+":
            return f"{left}{right}"
        raise FormulaError("AutoScalingFormulaEvaluationError", f"cannot apply {op} to a string")
    a, b = float(left), float(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op in ("/", "%"):
        if b == 0:
            raise FormulaError("AutoScalingFormulaEvaluationError", "division by zero")
        return a / b if op == "/" else math.fmod(a, b)
    comparisons = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}
    return float(comparisons[op])


def _truthy(value: Value) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_truthy(item) for item in value)
    if isinstance(value, str):
        return bool(value)
    return float(value) != 0.0


class _Interpreter:
    def __init__(self, formula: str, variables: dict[str, Value]) -> None:
        self.tokens = self._tokenize(formula)
        self.position = 0
        self.variables = variables
        self.assigned: list[str] = []

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        text = re.sub(r"//[^\n]*", "", text)
        tokens: list[tuple[str, str]] = []
        position = 0
        while text[position:].strip():
            match = _TOKEN.match(text, position)
            if not match:
                raise FormulaError(
                    "AutoScalingFormulaSyntaxError", f"unexpected character near {text[position:][:20]!r}"
                )
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] == text:
            self.position += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.peek()
            raise FormulaError(
                "AutoScalingFormulaSyntaxError",
                f"expected {text!r} but found {found[1] if found else 'end'!r}",
            )

    def run(self) -> None:
        while self.peek() is not None:
            if self.accept(";"):
                continue
            self.statement()
            if self.peek() is not None:
                self.expect(";")

    def statement(self) -> None:
        token, following = self.peek(), self.peek(1)
        if token and token[0] == "name" and following == ("op", "="):
            self.position += 2
            value = self.expression()
            name = token[1]
            canonical = next((v for v in SERVICE_VARIABLES if v.lower() == name.lower()), name)
            if canonical.lower() == "$targetdedicated":
                canonical = "$TargetDedicatedNodes"
            self.variables[canonical] = value
            if canonical not in self.assigned:
                self.assigned.append(canonical)
            return
        self.expression()

    def expression(self) -> Value:
        condition = self.logical_or()
        if self.accept("?"):
            when_true = self.expression()
            self.expect(":")
            when_false = self.expression()
            return when_true if _truthy(condition) else when_false
        return condition

    def logical_or(self) -> Value:
        value = self.logical_and()
        while self.accept("||"):
            right = self.logical_and()
            value = float(_truthy(value) or _truthy(right))
        return value

    def logical_and(self) -> Value:
        value = self.comparison()
        while self.accept("&&"):
            right = self.comparison()
            value = float(_truthy(value) and _truthy(right))
        return value

    def comparison(self) -> Value:
        value = self.additive()
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.accept(op):
                return _binary(op, value, self.additive())
        return value

    def additive(self) -> Value:
        value = self.multiplicative()
        while True:
            if self.accept("+"):
                value = _binary("+", value, self.multiplicative())
            elif self.accept("-"):
                value = _binary("-", value, self.multiplicative())
            else:
                return value

    def multiplicative(self) -> Value:
        value = self.unary()
        while True:
            for op in ("*", "/", "%"):
                if self.accept(op):
                    value = _binary(op, value, self.unary())
                    break
            else:
                return value

    def unary(self) -> Value:
        if self.accept("-"):
            return _binary("*", -1.0, self.unary())
        if self.accept("!"):
            return float(not _truthy(self.unary()))
        return self.postfix()

    def postfix(self) -> Value:
        value = self.primary()
        while self.accept("."):
            token = self.peek()
            if token is None or token[0] != "name":
                raise FormulaError("AutoScalingFormulaSyntaxError", "expected a method name after '.'")
            self.position += 1
            args = self.arguments()
            if not isinstance(value, Sample):
                raise FormulaError(
                    "AutoScalingFormulaEvaluationError", f"{token[1]}() needs a sampled variable"
                )
            value = value.call(token[1], args)
        return value

    def arguments(self) -> list[Value]:
        self.expect("(")
        args: list[Value] = []
        if not self.accept(")"):
            args.append(self.expression())
            while self.accept(","):
                args.append(self.expression())
            self.expect(")")
        return args

    def primary(self) -> Value:
        token = self.peek()
        if token is None:
            raise FormulaError("AutoScalingFormulaSyntaxError", "unexpected end of formula")
        kind, text = token
        self.position += 1
        if kind == "number":
            return float(text)
        if kind == "string":
            return text[1:-1]
        if kind == "op" and text == "(":
            value = self.expression()
            self.expect(")")
            return value
        if kind == "name":
            if self.peek() == ("op", "("):
                function = _FUNCTIONS.get(text.lower())
                if function is None:
                    raise FormulaError("AutoScalingFormulaSyntaxError", f"unknown function {text}()")
                return function(self.arguments())
            if text.lower() in _CONSTANTS:
                return _CONSTANTS[text.lower()]
            if text.lower() in _DEALLOCATION_OPTIONS:
                return text.lower()
            for name, value in self.variables.items():
                if name.lower() == text.lower():
                    return value
            raise FormulaError("AutoScalingFormulaEvaluationError", f"{text} is not defined")
        raise FormulaError("AutoScalingFormulaSyntaxError", f"unexpected {text!r}")


@dataclass
class FormulaResult:
    """The outcome of one evaluation: the new targets and the ``results`` string the service reports."""

    target_dedicated: int
    target_low_priority: int
    node_deallocation_option: str
    results: str


def _format_value(value: Value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "{" + ",".join(_format_value(item) for item in value) + "}"
    if isinstance(value, Sample):
        return f"{value.name}"
    return str(value)


def _node_count(value: Value, name: str) -> int:
    if isinstance(value, (list, str, Sample)):
        raise FormulaError("AutoScalingFormulaEvaluationError", f"{name} must be a number")
    return max(0, int(float(value)))


def evaluate_formula(
    formula: str,
    *,
    current_dedicated: int,
    current_low_priority: int,
    target_dedicated: int,
    target_low_priority: int,
    metrics: dict[str, float],
    preempted: int = 0,
) -> FormulaResult:
    """Run ``formula`` against the pool's current numbers; raise :class:`FormulaError` when it fails."""
    variables: dict[str, Value] = {
        "$TargetDedicatedNodes": float(target_dedicated),
        "$TargetLowPriorityNodes": float(target_low_priority),
        "$NodeDeallocationOption": "requeue",
        "$CurrentDedicatedNodes": float(current_dedicated),
        "$CurrentLowPriorityNodes": float(current_low_priority),
        "$PreemptedNodeCount": float(preempted),
        "$UsableNodeCount": float(current_dedicated + current_low_priority),
    }
    for name in _SAMPLED:
        variables[name] = Sample(name, float(metrics.get(name, 0.0)))
    interpreter = _Interpreter(formula, variables)
    interpreter.run()
    dedicated = _node_count(variables["$TargetDedicatedNodes"], "$TargetDedicatedNodes")
    low_priority = _node_count(variables["$TargetLowPriorityNodes"], "$TargetLowPriorityNodes")
    option = str(variables["$NodeDeallocationOption"]).lower()
    shown = list(SERVICE_VARIABLES) + [name for name in interpreter.assigned if name not in SERVICE_VARIABLES]
    results = ";".join(f"{name}={_format_value(variables[name])}" for name in shown)
    return FormulaResult(dedicated, low_priority, option, results)

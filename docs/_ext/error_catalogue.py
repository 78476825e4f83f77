"""The error catalogue: every message the package can show a user, read from its source with ``ast``.

Each construction of a ``Problem`` subclass (problem and fix), each ``(problem, fix)`` pair a function
returns for its caller to raise, each FAIL/WARN row of ``check``, each HTTP error of the server
extension, ``SparkJVMGone``, each warning written to a log and each line printed to stderr. Values
computed at run time appear as ``<expression>``; a message handed on from elsewhere (``error.problem``)
is listed where it is written. Used by ``pyspark_reference.py``'s ``error-messages`` directive.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias


@dataclass(frozen=True)
class Message:
    module: str  # pyspark_kernel/cli/options.py
    line: int
    kind: str  # the exception class, "check FAIL", "HTTP 502"
    problem: str
    fix: str


def module_constants(trees: dict[str, ast.Module]) -> dict[str, str]:
    """Module-level string constants of the whole package, by name (a name with two values is left out)."""
    found: dict[str, set[str]] = {}
    for tree in trees.values():
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
                value = static_text(statement.value, {})
                if value is not None:
                    found.setdefault(statement.targets[0].id, set()).add(value)
    return {name: values.pop() for name, values in found.items() if len(values) == 1}


def static_text(node: ast.AST, constants: dict[str, str]) -> str | None:
    """The text of a string expression, if it holds no run-time value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = static_text(node.left, constants), static_text(node.right, constants)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return None


Scope: TypeAlias = dict[str, ast.AST]  # a function's locals assigned once, by name: what a message's ``{problem}`` was


def shown_text(node: ast.AST, constants: dict[str, str], scope: Scope | None = None) -> str:
    """A message as a user reads it, each run-time value shown as ``<expression>``."""
    scope = scope or {}
    text = static_text(node, constants)
    if text is not None:
        return text
    if isinstance(node, ast.Name) and node.id in scope:
        return shown_text(scope[node.id], constants, {name: value for name, value in scope.items() if name != node.id})
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                parts.append(f"<{ast.unparse(value.value)}>")
            else:
                parts.append(shown_text(value, constants, scope))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return shown_text(node.left, constants, scope) + shown_text(node.right, constants, scope)
    if isinstance(node, ast.IfExp):
        return f"{shown_text(node.body, constants, scope)} | {shown_text(node.orelse, constants, scope)}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("strip", "rstrip", "lstrip"):
        return shown_text(node.func.value, constants, scope)
    return f"<{ast.unparse(node)}>"


def is_passed_on(node: ast.AST, scope: Scope) -> bool:
    """A message written elsewhere and handed on (``error.problem``, a parameter): listed where written."""
    if isinstance(node, ast.Name):
        return node.id not in scope or is_passed_on(scope[node.id], {})
    return isinstance(node, ast.Attribute) or (isinstance(node, ast.Call) and not isinstance(node.func, ast.Attribute))


def problem_classes(trees: dict[str, ast.Module]) -> set[str]:
    """``Problem`` and every class of the package derived from it, however deep."""
    bases = {
        node.name: {base.id for base in node.bases if isinstance(base, ast.Name)}
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    found = {"Problem"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def scopes(tree: ast.Module) -> Iterator[tuple[str, Scope, list[ast.AST]]]:
    """(function name, its locals assigned once, its nodes) for each function; then the module's own."""
    inner: set[int] = set()
    for function in (node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))):
        body = [node for node in ast.walk(function) if id(node) not in inner and node is not function]
        inner.update(id(node) for node in body)
        assigned: dict[str, list[ast.AST]] = {}
        for node in body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                assigned.setdefault(node.targets[0].id, []).append(node.value)
        yield function.name, {name: values[0] for name, values in assigned.items() if len(values) == 1}, body
    yield "", {}, [node for node in ast.walk(tree) if id(node) not in inner]


def percent_text(call: ast.Call, constants: dict[str, str], scope: Scope, first: int) -> str:
    """A ``"… %s …", value`` message (HTTPError, logging) from argument ``first`` on, each ``%s``/``%d``
    shown as its value's expression."""
    parts = re.split(r"%[sdr]", shown_text(call.args[first], constants, scope))
    values = [shown_text(value, constants, scope) if isinstance(value, ast.Constant) else f"<{ast.unparse(value)}>" for value in call.args[first + 1 :]]
    values += ["%s"] * (len(parts) - 1 - len(values))
    return parts[0] + "".join(value + part for value, part in zip(values, parts[1:], strict=False))


def messages(package: Path) -> list[Message]:
    trees = {str(path.relative_to(package.parent)): ast.parse(path.read_text(), str(path)) for path in sorted(package.rglob("*.py"))}
    constants = module_constants(trees)
    errors = (problem_classes(trees) - {"Problem"}) | {"SparkJVMGone"}
    found: list[Message] = []
    for module, tree in trees.items():
        for function, scope, body in scopes(tree):
            for node in body:
                found.extend(messages_of(node, module, function, scope, constants, errors))
    return sorted(found, key=lambda message: (message.module, message.line))


def messages_of(node: ast.AST, module: str, function: str, scope: Scope, constants: dict[str, str], errors: set[str]) -> Iterator[Message]:
    def text(value: ast.AST) -> str:
        return shown_text(value, constants, scope)

    if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2:
        # a (problem, fix) pair returned for a caller to raise (environment.java_refusal)
        if all(isinstance(part, ast.JoinedStr) or (isinstance(part, ast.Constant) and isinstance(part.value, str)) for part in node.value.elts):
            yield Message(module, node.lineno, f"{function}()", text(node.value.elts[0]), text(node.value.elts[1]))
        return
    if not isinstance(node, ast.Call):
        return
    name, args = call_name(node), list(node.args)
    if name in errors and args and not is_passed_on(args[0], scope):
        yield Message(module, node.lineno, name, text(args[0]), text(args[1]) if len(args) > 1 else "")
    elif name == "CheckResult" and len(args) >= 3 and isinstance(args[1], ast.Name) and args[1].id in ("FAIL", "WARN"):
        if not is_passed_on(args[2], scope):
            yield Message(module, node.lineno, f"check {args[1].id}: {text(args[0])}", text(args[2]), text(args[3]) if len(args) > 3 else "")
    elif name == "HTTPError" and len(args) >= 2 and isinstance(args[0], ast.Constant) and static_text(args[1], constants) != "%s":
        yield Message(module, node.lineno, f"HTTP {args[0].value!s}", percent_text(node, constants, scope, 1), "")
    elif name == "warning" and args and isinstance(node.func, ast.Attribute) and not is_passed_on(args[0], scope):
        # logger.warning / self.log.warning: a line in the kernel's or the server's log
        yield Message(module, node.lineno, "log warning", percent_text(node, constants, scope, 0), "")
    elif name == "print" and args and to_stderr(node) and not is_passed_on(args[0], scope):
        yield Message(module, node.lineno, "stderr", text(args[0]), "")


def to_stderr(call: ast.Call) -> bool:
    return any(word.arg == "file" and ast.unparse(word.value) == "sys.stderr" for word in call.keywords)

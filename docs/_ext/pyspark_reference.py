"""Reference tables generated from the code's own tables at build time, so the docs cannot drift from it.

Directives (used in the Markdown pages as ```{directive-name}``` blocks):

- ``install-options``: every option of every ``pyspark-kernel`` subcommand, read from the argparse
  parser the command runs (``pyspark_kernel.cli.main.build_parser``); a new option shows up here by
  itself, with its help text, metavar and default.
- ``kernel-variables``: every ``PYSPARK_KERNEL_*`` variable, from ``pyspark_kernel.variables.VARIABLES``.
  A ``PYSPARK_KERNEL_*`` name written anywhere in the package but missing from that table is a build
  warning (so an error under ``-W``).
- ``provisioner-traits``: the kernel provisioner's configurable traits, from ``PySparkProvisioner``.
- ``module-map``: each module of a folder with the first paragraph of its docstring and its length.
- ``import-contracts``: the import-linter contracts of pyproject.toml.
- ``jvm-diagnoses``: the known lines of a failed JVM's output, from ``pyspark_kernel.kernel.jvm.DIAGNOSES``.
- ``java-support``: which Java each Spark line runs on, from ``pyspark_kernel.environment.SUPPORTED_JAVA``.
- ``code-text``: one string constant of the package, quoted (``pyspark_kernel.uiroute.GONE``).
- ``error-messages``: every message the package can show a user, grouped by the folder (so the process)
  that shows it; read from the source by ``error_catalogue.py``.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

from docutils import nodes
from error_catalogue import Message, messages
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

Cell: TypeAlias = str | nodes.Node


# -- table building ---------------------------------------------------------------------------------------
def literal(text: str) -> nodes.Node:
    paragraph = nodes.paragraph()
    paragraph += nodes.literal(text=text)
    return paragraph


def rich_text(text: str) -> nodes.paragraph:
    """A docstring's sentence as a paragraph, its ``double-backquoted`` parts as code."""
    paragraph = nodes.paragraph()
    for index, part in enumerate(text.split("``")):
        if part:
            paragraph += nodes.literal(text=part) if index % 2 else nodes.Text(part)
    return paragraph


def table(header: list[str], rows: Iterable[list[Cell]], widths: list[int] | None = None) -> nodes.table:
    """A docutils table: one header row, then ``rows`` of strings (plain text) or nodes."""
    node = nodes.table(classes=["pyspark-reference"])
    group = nodes.tgroup(cols=len(header))
    node += group
    for width in widths or [1] * len(header):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += row_node(header)
    body = nodes.tbody()
    group += body
    for row in rows:
        body += row_node(row)
    return node


def row_node(cells: list[Cell]) -> nodes.row:
    row = nodes.row()
    for value in cells:
        entry = nodes.entry()
        entry += value if isinstance(value, nodes.Node) else nodes.paragraph(text=value)
        row += entry
    return row


class GeneratedDirective(SphinxDirective):
    """A directive whose output is read from the package: the page is rebuilt whenever the package's
    source, pyproject.toml or this extension change, so an incremental build never shows old tables."""

    def run(self) -> list[nodes.Node]:
        import pyspark_kernel

        package = Path(pyspark_kernel.__file__).parent
        for path in [*sorted(package.rglob("*.py")), package.parent / "pyproject.toml", Path(__file__)]:
            if path.is_file():
                self.env.note_dependency(str(path))
        return self.generate()

    def generate(self) -> list[nodes.Node]:
        raise NotImplementedError


# -- the CLI's options ------------------------------------------------------------------------------------
def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def option_rows(parser: argparse.ArgumentParser) -> list[list[Cell]]:
    formatter = parser._get_formatter()
    rows: list[list[Cell]] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        spelled = ", ".join(action.option_strings) or action.dest
        takes = formatter._format_args(action, action.dest.upper()) if action.nargs != 0 else ""
        if action.option_strings and takes:
            spelled = f"{spelled} {takes}"
        help_text = formatter._expand_help(action) if action.help else ""
        if not help_text:
            logger.warning("pyspark-kernel %s: option %s has no help text for the reference", parser.prog, spelled)
        default = action.default
        shown = "" if default in (None, False, [], argparse.SUPPRESS) or action.nargs == 0 else str(default)
        if action.nargs == "?" and action.const is not None:
            shown = f"{shown} (without a value: {action.const})".strip()
        if isinstance(action, argparse._AppendAction):
            help_text += "" if "repeatable" in help_text else " (repeatable)"
        rows.append([literal(spelled), help_text, shown])
    return rows


class InstallOptions(GeneratedDirective):
    """Every subcommand of ``pyspark-kernel`` with every option, from the parser the command runs."""

    def generate(self) -> list[nodes.Node]:
        from pyspark_kernel.cli.main import build_parser

        out: list[nodes.Node] = []
        for name, sub in subcommands(build_parser()):
            section_id = f"cli-{name}"
            section = nodes.section(ids=[section_id], names=[section_id])
            section += nodes.title(text=f"pyspark-kernel {name}")
            if sub.description or sub.format_usage():
                section += nodes.paragraph(text=sub.description or "")
                section += nodes.literal_block(text=sub.format_usage().strip(), language="text")
            section += table(["option", "meaning", "default"], option_rows(sub), [3, 8, 2])
            out.append(section)
        return out


# -- the PYSPARK_KERNEL_* variables -----------------------------------------------------------------------
NAME_IN_SOURCE = re.compile(r"PYSPARK_KERNEL_[A-Z_]+")


class KernelVariables(GeneratedDirective):
    def generate(self) -> list[nodes.Node]:
        import pyspark_kernel
        from pyspark_kernel.variables import VARIABLES

        known = {variable.name for variable in VARIABLES}
        package = Path(pyspark_kernel.__file__).parent
        for source in sorted(package.rglob("*.py")):
            for name in sorted(set(NAME_IN_SOURCE.findall(source.read_text())) - known):
                logger.warning("%s names %s, which pyspark_kernel.variables.VARIABLES does not hold", source.relative_to(package.parent), name)
        rows: list[list[Cell]] = [
            [literal(variable.name), literal(variable.values), variable.default, variable.meaning, variable.set_by] for variable in VARIABLES
        ]
        return [table(["variable", "values", "default", "meaning", "set by"], rows, [4, 2, 2, 8, 3])]


# -- the kernel provisioner's traitlets -------------------------------------------------------------------
class ProvisionerTraits(GeneratedDirective):
    """The provisioner's configurable traits (``--PySparkProvisioner.NAME`` or the kernelspec's provisioner config)."""

    def generate(self) -> list[nodes.Node]:
        from pyspark_kernel.server.provisioner import PySparkProvisioner

        rows: list[list[Cell]] = []
        for name, trait in sorted(PySparkProvisioner.class_traits(config=True).items()):
            if trait.this_class is not PySparkProvisioner:
                continue  # jupyter_client's own traits: its docs describe them
            rows.append([literal(name), type(trait).__name__, repr(trait.default_value), trait.help])
        return [table(["trait", "type", "default", "meaning"], rows, [3, 2, 2, 8])]


# -- the package's layout: modules by folder, import contracts ---------------------------------------------
def first_paragraph(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    if not docstring:
        logger.warning("%s has no module docstring for the architecture page", path)
    return " ".join(docstring.split("\n\n")[0].split())


class ModuleMap(GeneratedDirective):
    """Each module of one folder of the package (``pyspark_kernel/kernel``, sub-folders included) with the
    first paragraph of its docstring; ``pyspark_kernel`` alone lists the shared top level."""

    required_arguments = 1

    def generate(self) -> list[nodes.Node]:
        import pyspark_kernel

        root = Path(pyspark_kernel.__file__).parent.parent
        folder = root / self.arguments[0]
        top_only = folder == root / "pyspark_kernel"
        paths = sorted(folder.glob("*.py") if top_only else folder.rglob("*.py"))
        rows: list[list[Cell]] = []
        for path in paths:
            if path.name == "__init__.py" and path.parent == folder:
                continue
            rows.append([literal(str(path.relative_to(folder))), rich_text(first_paragraph(path)), str(len(path.read_text().splitlines()))])
        return [table(["module", "what it holds (its docstring)", "lines"], rows, [3, 10, 1])]


class ImportContracts(GeneratedDirective):
    """The import-linter contracts of pyproject.toml, which ``make lint`` checks."""

    def generate(self) -> list[nodes.Node]:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        import pyspark_kernel

        pyproject = Path(pyspark_kernel.__file__).parent.parent / "pyproject.toml"
        contracts = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["contracts"]
        rows: list[list[Cell]] = []
        for contract in contracts:
            modules = contract.get("modules") or contract.get("source_modules") or []
            forbidden = contract.get("forbidden_modules", [])
            rule = ", ".join(forbidden) if forbidden else "none imports another"
            rows.append([contract["name"], contract["type"], ", ".join(modules), rule])
        return [table(["contract", "type", "modules", "may not import"], rows, [6, 2, 5, 5])]


# -- tables of the kernel: JVM diagnoses, Java support ----------------------------------------------------
class JvmDiagnoses(GeneratedDirective):
    def generate(self) -> list[nodes.Node]:
        from pyspark_kernel.kernel.jvm import DIAGNOSES, UNKNOWN_CAUSE

        rows: list[list[Cell]] = [[literal(needle), cause, fix] for needle, cause, fix in DIAGNOSES]
        rows.append(["(anything else)", UNKNOWN_CAUSE[0], UNKNOWN_CAUSE[1]])
        return [table(["the JVM's output contains", "the kernel says", "fix"], rows, [3, 4, 6])]


class JavaSupport(GeneratedDirective):
    def generate(self) -> list[nodes.Node]:
        from pyspark_kernel.javas import FIRST_SAFE_UPDATE, SUPPORTED_JAVA

        rows: list[list[Cell]] = []
        for line, javas in sorted(SUPPORTED_JAVA.items()):
            notes = [f"Java {java} only from {'.'.join(map(str, FIRST_SAFE_UPDATE[java]))}" for java in javas if java in FIRST_SAFE_UPDATE]
            rows.append([".".join(map(str, line)), ", ".join(map(str, javas)), "; ".join(notes)])
        return [table(["Spark", "Java", "note"], rows, [2, 3, 6])]


class CodeText(GeneratedDirective):
    """The text of one string constant of the package (``pyspark_kernel.uiroute.GONE``), quoted."""

    required_arguments = 1

    def generate(self) -> list[nodes.Node]:
        import importlib

        module_name, _, attribute = self.arguments[0].rpartition(".")
        value = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(value, str):
            logger.warning("%s is not a string", self.arguments[0])
            value = str(value)
        quote = nodes.block_quote()
        quote += nodes.paragraph(text=value)
        return [quote]


WINGS = (
    ("pyspark_kernel/cli/", "The command line (pyspark-kernel install, list, show, remove, check)"),
    ("pyspark_kernel/kernel/", "The kernel, in a notebook cell"),
    ("pyspark_kernel/server/", "The Jupyter server (provisioner, pool, Spark UI route)"),
    ("pyspark_kernel/", "Shared: shown by install and check, and by the kernel or the provisioner at launch"),
)


def where(message: Message) -> nodes.Node:
    """The error's kind, and below it, smaller, the line of the source that shows it."""
    cell = nodes.container()
    cell += literal(message.kind)
    cell += nodes.paragraph("", "", nodes.emphasis(text=f"{message.module.removeprefix('pyspark_kernel/')}:{message.line}"))
    return cell


class ErrorMessages(GeneratedDirective):
    def generate(self) -> list[nodes.Node]:
        import pyspark_kernel

        found = messages(Path(pyspark_kernel.__file__).parent)
        out: list[nodes.Node] = []
        taken: set[Message] = set()
        for prefix, title in WINGS:
            mine = [message for message in found if message.module.startswith(prefix) and message not in taken]
            taken.update(mine)
            section_id = "errors-" + (prefix.strip("/").split("/")[-1] if prefix.count("/") > 1 else "shared")
            section = nodes.section(ids=[section_id], names=[section_id])
            section += nodes.title(text=title)
            rows: list[list[Cell]] = [[where(message), message.problem, message.fix] for message in mine]
            section += table(["error, and where", "message", "fix"], rows, [3, 7, 5])
            out.append(section)
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("install-options", InstallOptions)
    app.add_directive("kernel-variables", KernelVariables)
    app.add_directive("jvm-diagnoses", JvmDiagnoses)
    app.add_directive("java-support", JavaSupport)
    app.add_directive("error-messages", ErrorMessages)
    app.add_directive("code-text", CodeText)
    app.add_directive("provisioner-traits", ProvisionerTraits)
    app.add_directive("module-map", ModuleMap)
    app.add_directive("import-contracts", ImportContracts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

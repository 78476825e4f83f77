#!/usr/bin/env bash
# make test-wheel: what users install is what CI tests. The suite runs on an editable install, which
# skips data-files (the server extension's enable file) and reads the package from the source tree;
# here the wheel pip would get is built, checked and used in a fresh venv:
#   1. the sdist, and the wheel built from it (python -m build), checked as PyPI checks them (twine check --strict);
#   2. a fresh venv in a temporary folder, with only the wheel and its dependencies (pip may fetch them;
#      its cache makes that quick after the first run);
#   3. that venv's `pyspark-kernel install --sys-prefix`, then a notebook run through the kernelspec
#      (jupyter nbconvert --execute) from a folder outside the source tree: `spark.range(5).count()`
#      must give 5, from the package in the venv;
#   4. `jupyter server extension list` in that venv: the Spark UI route enabled by the wheel's data-files.
# The temporary folder (venv, notebook, Jupyter folders, class-data archive) is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
PY="${PY:-.venv/bin/python}"
PYTHON="${PYTHON:-python3}"
KERNEL="pyspark_python3"  # the name `install` gives by default

started=$(date +%s)
step_started=$started
say() { echo "wheel-test: $*" >&2; }
step() {
  local now
  now=$(date +%s)
  say "  (${1:-step} took $((now - step_started)) s)"
  step_started=$now
}

work="$(mktemp -d "${TMPDIR:-/tmp}/pyspark-wheel-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
dist="$work/dist"
venv="$work/venv"

# -- 1. build and check --------------------------------------------------------------------------
say "building the sdist, then the wheel from it (python -m build)"
"$PY" -m build --outdir "$dist" "$REPO" > "$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
wheel=$(ls "$dist"/*.whl)
sdist=$(ls "$dist"/*.tar.gz)
say "built $(basename "$wheel") and $(basename "$sdist")"
"$PY" -m twine check --strict "$dist"/*
# The enable file is a data-file: only a wheel carries it, and only to <prefix>/etc/jupyter.
"$PY" -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(not any(name.endswith(".data/data/etc/jupyter/jupyter_server_config.d/pyspark_kernel.json") for name in names))' "$wheel" || {
  say "the wheel lacks its data-file etc/jupyter/jupyter_server_config.d/pyspark_kernel.json"
  exit 1
}
step build

# -- 2. a fresh venv with the wheel --------------------------------------------------------------
say "installing the wheel into a fresh venv ($venv)"
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel" > "$work/pip.log" 2>&1 || { tail -30 "$work/pip.log" >&2; exit 1; }
step install

# -- 3. the kernelspec and a notebook --------------------------------------------------------------
# Jupyter's folders in the temporary folder: nothing of the user's (a kernelspec of the same name in
# ~/.local/share/jupyter, a server config) takes part, and nothing is left behind.
export JUPYTER_CONFIG_DIR="$work/jupyter/config" JUPYTER_DATA_DIR="$work/jupyter/data" JUPYTER_RUNTIME_DIR="$work/jupyter/runtime"
export JUPYTER_PREFER_ENV_PATH=1 XDG_CACHE_HOME="$work/cache"
unset JUPYTER_PATH PYTHONPATH VIRTUAL_ENV
say "pyspark-kernel install --sys-prefix (with its JVM class-data archive, as a user gets it)"
"$venv/bin/pyspark-kernel" install --sys-prefix
spec_dir="$venv/share/jupyter/kernels/$KERNEL"
[ -f "$spec_dir/kernel.json" ] || { say "no kernelspec in $spec_dir"; exit 1; }
step kernelspec

say "running a notebook through the $KERNEL kernelspec (jupyter nbconvert --execute)"
mkdir -p "$work/notebook"
"$venv/bin/python" - "$work/notebook/check.ipynb" "$KERNEL" << 'EOF'
import sys

import nbformat

notebook = nbformat.v4.new_notebook()
notebook.metadata["kernelspec"] = {"name": sys.argv[2], "display_name": "PySpark", "language": "python"}
notebook.cells = [
    nbformat.v4.new_code_cell("spark.range(5).count()"),
    nbformat.v4.new_code_cell("import pyspark_kernel, sys; (sys.prefix, pyspark_kernel.__file__)"),
]
nbformat.write(notebook, sys.argv[1])
EOF
# From the notebook's folder, not the source tree: `python -m pyspark_kernel` puts its working folder
# first on sys.path, where the checkout's package would hide the wheel's.
(cd "$work/notebook" && "$venv/bin/jupyter" nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300 \
  --output executed.ipynb check.ipynb > "$work/nbconvert.log" 2>&1) || { tail -40 "$work/nbconvert.log" >&2; exit 1; }
"$venv/bin/python" - "$work/notebook/executed.ipynb" "$venv" << 'EOF'
import ast
import sys
from pathlib import Path

import nbformat

notebook = nbformat.read(sys.argv[1], as_version=4)
venv = Path(sys.argv[2]).resolve()


def result(cell):
    values = [output["data"]["text/plain"] for output in cell.outputs if output.output_type == "execute_result"]
    errors = [f"{output.ename}: {output.evalue}" for output in cell.outputs if output.output_type == "error"]
    assert values and not errors, f"cell {cell.source!r} gave no result: {errors or cell.outputs}"
    return values[0]


count = result(notebook.cells[0])
assert count == "5", f"spark.range(5).count() gave {count}"
prefix, module = ast.literal_eval(result(notebook.cells[1]))
assert Path(prefix).resolve() == venv, f"the kernel ran in {prefix}, not in the fresh venv {venv}"
assert Path(module).resolve().is_relative_to(venv), f"the kernel imported pyspark_kernel from {module}, not from the wheel"
print(f"wheel-test: the notebook ran in the fresh venv: spark.range(5).count() = {count}; pyspark_kernel from {module}", file=sys.stderr)
EOF
step notebook

# -- 4. the server extension, enabled by the wheel's data-files -------------------------------------
[ -f "$venv/etc/jupyter/jupyter_server_config.d/pyspark_kernel.json" ] || { say "pip did not install the enable file into $venv/etc/jupyter"; exit 1; }
listing=$("$venv/bin/jupyter" server extension list 2>&1)
echo "$listing" | grep -E "^\s*(Config dir|pyspark_kernel)" >&2 || true
echo "$listing" | grep -qE "pyspark_kernel\.server\.uiproxy.*enabled" || {
  say "jupyter server extension list does not show pyspark_kernel.server.uiproxy enabled:"
  echo "$listing" >&2
  exit 1
}
echo "$listing" | grep -q "pyspark_kernel.server.uiproxy.*OK" || {
  say "the extension is enabled but does not load:"
  echo "$listing" >&2
  exit 1
}
step "extension list"
say "passed in $(($(date +%s) - started)) s"

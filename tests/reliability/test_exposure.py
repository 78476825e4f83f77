"""What a local-mode kernel exposes: only loopback ports, and a py4j gateway that wants its secret."""

from __future__ import annotations

import psutil
import pytest
from conftest import KernelHarness

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def test_every_listening_port_is_loopback(spark_kernel: KernelHarness) -> None:
    spark_kernel.value("spark.range(1).count()")
    gateway_port = int(spark_kernel.value("sc._gateway.gateway_parameters.port"))
    ui_port = int(spark_kernel.value("sc.uiWebUrl").strip("'").rsplit(":", 1)[1])
    processes = [psutil.Process(spark_kernel.pid)] + spark_kernel.java_children()
    listening = [conn for process in processes for conn in process.net_connections(kind="tcp") if conn.status == psutil.CONN_LISTEN]
    ports = {conn.laddr.port for conn in listening}
    assert {gateway_port, ui_port} <= ports, "the py4j gateway and the Spark UI are among the ports read"
    assert len(ports) >= 5 + 3, "ZeroMQ's five channels and the JVM's gateway, driver, block manager, UI"
    exposed = [conn for conn in listening if conn.laddr.ip not in LOOPBACK]
    assert exposed == [], exposed


def test_py4j_gateway_refuses_a_client_without_its_secret(spark_kernel: KernelHarness) -> None:
    """py4j's own error for the client without the secret, and the same call answered with it: the
    refusal is the secret's doing, not a port that answers nobody."""
    from py4j.clientserver import ClientServer, JavaParameters, PythonParameters
    from py4j.protocol import Py4JError

    port = int(spark_kernel.value("sc._gateway.gateway_parameters.port"))
    secret = spark_kernel.value("sc._gateway.gateway_parameters.auth_token").strip("'")
    intruder = ClientServer(java_parameters=JavaParameters(port=port, auto_convert=True), python_parameters=PythonParameters(port=0))
    try:
        with pytest.raises(Py4JError):
            intruder.jvm.java.lang.System.getProperty("user.name")
    finally:
        intruder.close()  # close, not shutdown: shutdown asks the JVM's gateway server to stop
    owner = ClientServer(java_parameters=JavaParameters(port=port, auth_token=secret, auto_convert=True), python_parameters=PythonParameters(port=0))
    try:
        assert owner.jvm.java.lang.System.getProperty("user.name"), "the same call with the gateway's secret is answered"
    finally:
        owner.close()  # with the secret, shutdown would stop the shared kernel's gateway server for good

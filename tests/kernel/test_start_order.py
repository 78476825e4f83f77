"""When a kernel's start launches its JVM: after ipykernel's import and shell, before the session's start.

Begun before ipykernel was imported, spark-submit's launcher JVM and the driver JVM took the CPU that
import needs: on 2 cores the kernel's kernel_info reply came 86 ms later on an idle machine and twice
as late on a loaded one (bench row 1 at 1.17x plain ipykernel). Begun once the shell is built, the JVM
still starts before the session's thread imports pyspark, so the first count keeps its head start.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import install
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

pytestmark = pytest.mark.slow

# The kernel's own start (kernel/launch.py), with an audit hook that notes, at each spark-submit it
# spawns, which of ipykernel's and pyspark's modules the process had imported by then.
KERNEL = """
import sys
record = sys.argv.pop(1)
def note_spawn(event, args):
    if event == "subprocess.Popen" and str(args[1][0]).endswith("spark-submit"):
        with open(record, "a") as file:
            file.write(repr({name: name in sys.modules for name in ("ipykernel.kernelapp", "pyspark_kernel.kernel.ipkernel", "pyspark")}) + "\\n")
sys.addaudithook(note_spawn)
from pyspark_kernel.kernel.launch import main
main()
"""


def test_the_jvm_is_launched_once_ipykernel_is_up_and_before_the_session_imports_pyspark(prefix: Path, tmp_path: Path) -> None:
    spec = json.loads((install(prefix, "--name", "start-order", "--replace") / "kernel.json").read_text())
    connection_file, _ = write_connection_file(str(tmp_path / "kernel-order.json"))
    record = tmp_path / "spawns.txt"
    env = {**os.environ, **spec["env"]}
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL, str(record), "-f", connection_file], env=env, cwd=tmp_path)
    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        client.execute("spark.range(3).count()")
        reply = client.get_shell_msg(timeout=300)
        assert reply["content"]["status"] == "ok", reply["content"]
        client.shutdown()
        kernel.wait(60)
    finally:
        client.stop_channels()
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()
    spawns = [ast.literal_eval(line) for line in record.read_text().splitlines()]
    assert len(spawns) == 1, f"one JVM launch, the early one, taken by the session: {spawns}"
    assert spawns[0]["ipykernel.kernelapp"] and spawns[0]["pyspark_kernel.kernel.ipkernel"], f"the JVM was launched before ipykernel was up: {spawns[0]}"
    assert not spawns[0]["pyspark"], f"the JVM was launched only after the session's start imported pyspark: {spawns[0]}"

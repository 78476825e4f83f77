"""What runs inside the Jupyter server: the kernel provisioner (provisioner.py), its warm pool (pool.py,
pooledkernel.py, poolregistry.py), ending process groups (reaper.py), and the server extension that
shows each kernel's Spark UI behind Jupyter's login (uiproxy.py).

Never imports the kernel's runtime (kernel/), pyspark or py4j: a server holds many kernels and must stay
lean (import-linter contracts in pyproject.toml).
"""

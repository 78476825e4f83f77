"""What runs inside the Jupyter server: the kernel provisioner (provisioner.py) and the JVMs it ends with
each kernel (kerneljvms.py); its warm pool (poolprovisioner.py: the launch's side; pool.py, pooledkernel.py,
pooltemplate.py, poolregistry.py); and the server extension that shows each kernel's Spark UI behind
Jupyter's login (uiproxy.py). Ending processes and telling them apart: processes.py, shared.

Never imports the kernel's runtime (kernel/), pyspark or py4j: a server holds many kernels and must stay
lean (import-linter contracts in pyproject.toml).
"""

"""Tests of pyspark_kernel/server/: the provisioner, the warm pool and the Spark UI route, inside a Jupyter server."""

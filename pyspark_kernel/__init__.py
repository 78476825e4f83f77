"""pyspark_kernel: a Jupyter kernel with a ready SparkSession, and the CLI that installs its kernelspecs."""

__version__ = "0.1.0"

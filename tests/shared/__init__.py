"""Tests of the modules at the top of pyspark_kernel/, which the kernel, the server and the command line share."""

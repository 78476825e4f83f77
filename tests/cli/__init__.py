"""Tests of pyspark_kernel/cli/: the pyspark-kernel command, the kernelspecs it writes and what check reports."""

"""Tests of pyspark_kernel/kernel/: the kernel process, its session, progress, warm-up and JVM."""

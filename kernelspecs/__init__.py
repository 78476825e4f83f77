"""The kernelspec template (kernel.json) and logos that `pyspark-kernel install` fills in."""

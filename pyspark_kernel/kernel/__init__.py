"""The kernel process: ipykernel's IPythonKernel with a SparkSession that starts while the user types.

launch.py starts it (prelaunch.py begins the JVM first), ipkernel.py is the kernel, controller.py and
session.py own the session, backends/ make it (classic: a JVM of this process; connect: a Spark Connect
server), and progress, warm-up, magics and the pyspark hooks serve the notebook.
"""

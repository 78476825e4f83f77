"""The two kinds of session: classic.py (a driver JVM this kernel launches, through py4j) and
connect.py (a Spark Connect server); base.py is what the session needs of either."""

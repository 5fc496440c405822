"""Development helpers shared by the tests, the demo and the benchmarks.

Not part of the distributed wheel. Everything here uses the standard library
only, so it works before (and without) installing the project.
"""

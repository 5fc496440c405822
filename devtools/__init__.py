"""Development helpers shared by the tests, the demo and the benchmarks.

Not part of the distributed wheel. Everything here uses the standard library
only, so it works before (and without) installing the project; the one
exception is `devtools.peers`, which also needs `gearman_proto`'s wire helpers
(importable from the source tree, no binding needed). `devtools.gearmand` is
the wheel's `gearman.testing` server helper, loaded from its file without
importing the ``gearman`` package.
"""

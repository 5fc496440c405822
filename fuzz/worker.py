#!/usr/bin/env python3
"""atheris target worker: input layout and checks in _harness.fuzz_worker."""

import sys

import atheris

with atheris.instrument_imports(include=["gearman_proto"]):
    from _harness import fuzz_worker

if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_worker)
    atheris.Fuzz()

#!/usr/bin/env python3
"""atheris target admin: input layout and checks in _harness.fuzz_admin."""

import sys

import atheris

with atheris.instrument_imports(include=["gearman_proto"]):
    from _harness import fuzz_admin

if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_admin)
    atheris.Fuzz()

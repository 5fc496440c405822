#!/usr/bin/env python3
"""atheris target client: input layout and checks in _harness.fuzz_client."""

import sys

import atheris

with atheris.instrument_imports(include=["gearman_proto"]):
    from _harness import fuzz_client

if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_client)
    atheris.Fuzz()

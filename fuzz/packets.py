#!/usr/bin/env python3
"""atheris target packets: input layout and checks in _harness.fuzz_packets."""

import sys

import atheris

with atheris.instrument_imports(include=["gearman_proto"]):
    from _harness import fuzz_packets

if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_packets)
    atheris.Fuzz()

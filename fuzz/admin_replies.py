#!/usr/bin/env python3
"""atheris target admin_replies: input layout and checks in _harness.fuzz_admin_replies."""

import sys

import atheris

with atheris.instrument_imports(include=["gearman_proto"]):
    from _harness import fuzz_admin_replies

if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_admin_replies)
    atheris.Fuzz()

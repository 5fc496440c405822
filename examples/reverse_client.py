"""A client that has "Hello World!" reversed: python-gearman's first example, on Python 3.

Usage: python reverse_client.py HOST:PORT
"""

from __future__ import annotations

import argparse
import sys

import gearman


def check_request_status(job_request: gearman.GearmanJobRequest) -> bool:
    """Print what became of a request; True if it completed."""
    if job_request.complete:
        result = job_request.result.decode() if job_request.result is not None else None
        print(f"Job {job_request.job.unique} finished! Result: {job_request.state} - {result}")
        return job_request.state == gearman.JOB_COMPLETE
    if job_request.timed_out:
        print(f"Job {job_request.job.unique} timed out!")
    elif job_request.state == gearman.JOB_UNKNOWN:
        print(f"Job {job_request.job.unique} connection failed!")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    arguments = parser.parse_args()

    with gearman.GearmanClient([arguments.address]) as gm_client:
        completed_job_request = gm_client.submit_job(
            "reverse", "Hello World!", poll_timeout=arguments.timeout
        )
        return 0 if check_request_status(completed_job_request) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""CTest driver of the Python binding tests: runs pytest on tests/python, or exits 77
(CTest's SKIP_RETURN_CODE) when pytest is not installed (Debian: python3-pytest)."""

import os
import sys

try:
    import pytest
except ImportError:
    print("run_pytest.py: skipped: pytest is not installed (python3-pytest)", file=sys.stderr)
    sys.exit(77)

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = ["-q", "-p", "no:cacheprovider", os.path.join(root, "tests", "python")]
sys.exit(pytest.main(args + sys.argv[1:]))

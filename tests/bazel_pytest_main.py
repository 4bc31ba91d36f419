"""Entry point for Bazel's py_test: run pytest on the module given as argument."""

import sys

import pytest

if __name__ == "__main__":
    sys.exit(pytest.main(["-p", "no:cacheprovider", *sys.argv[1:]]))

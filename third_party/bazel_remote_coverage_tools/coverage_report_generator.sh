#!/bin/sh
echo "bazel coverage is not available offline (no coverage_output_generator); use pytest --cov." >&2
exit 1

#!/usr/bin/env bash
# Build every Bazel target and run the fast test targets, offline, with Debian's bazel-bootstrap (Bazel 4.2).
# Python packages come from .venv (first on PATH); third_party/ stands in for the two repositories Bazel 4 would
# download for its own tools (rules_cc, remote_coverage_tools); rules_java comes from Debian's bazel-rules-java.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bazel >/dev/null || [ ! -d /usr/share/bazel/rules/java ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq bazel-bootstrap bazel-rules-java) >/dev/null 2>&1 || true
  fi
fi
if ! command -v bazel >/dev/null || [ ! -d /usr/share/bazel/rules/java ]; then
  echo "note: Debian's bazel-bootstrap / bazel-rules-java are not installed; the Bazel targets were not run"
  exit 0
fi
export PATH="$PWD/.venv/bin:$PATH"
overrides=(
  "--override_repository=rules_cc=$PWD/third_party/bazel_rules_cc"
  "--override_repository=rules_java=/usr/share/bazel/rules/java"
  "--override_repository=remote_coverage_tools=$PWD/third_party/bazel_remote_coverage_tools"
)
bazel build "${overrides[@]}" //...
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(//:test_block_args //:test_imagenet)
bazel test "${overrides[@]}" --test_output=errors "${targets[@]}"

"""Offline stand-in for @rules_cc//cc:defs.bzl: Bazel 4's built-in C++ rules under rules_cc's names.

Bazel 4.2's own @bazel_tools loads these names from @rules_cc, which it would download. Debian's bazel-bootstrap
has no network here and Debian's bazel-rules-cc is too new for Bazel 4.2 (it needs use_cpp_toolchain), so
scripts/bazel_test.sh points @rules_cc at this folder (--override_repository). We build no C++ ourselves.
"""

def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_import(**kwargs):
    native.cc_import(**kwargs)

def cc_proto_library(**kwargs):
    native.cc_proto_library(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)

def objc_library(**kwargs):
    native.objc_library(**kwargs)

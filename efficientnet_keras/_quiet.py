"""Clean output by default: TensorFlow's native libraries print INFO lines when they load (oneDNN, CUDA drivers,
CPU features), before absl's logging starts, so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them. They are loaded here
with the process's stderr pointed at a temporary file, which is replayed if the import fails."""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its load-time log lines, unless TF_CPP_MIN_LOG_LEVEL asks for INFO or WARNING
    lines (0 or 1)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in ("0", "1"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # after loading too: errors reach Python as exceptions
    try:
        stderr = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (some notebooks): nothing to hide
        return
    sys.stderr.flush()
    saved = os.dup(stderr)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), stderr)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, stderr)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, stderr)
            os.close(saved)

"""Import TensorFlow and Keras quietly.

TensorFlow's C++ start-up messages (e.g. "oneDNN custom operations are on", written before
absl logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them) go straight
to file descriptor 2. In a notebook they become stderr outputs that change between runs and
break exact-output regression checks, so the import runs with fd 2 pointed at /dev/null.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def import_tf() -> tuple[Any, Any]:
    """Return ``(tensorflow, keras)``, imported with TensorFlow's start-up chatter discarded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(devnull)
            os.close(saved)
    import keras
    import tensorflow as tf

    return tf, keras

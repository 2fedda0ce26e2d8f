"""The optional C modules setup.py builds, each used only when built from the source beside it.

``inboxsync._cparse`` (the parse's fast path, `inboxsync.parse`) and ``inboxsync._cfetch`` (the
FETCH reader's, `inboxsync.imap_lines`) are built in place by ``make install`` when a compiler and
the Python headers are there; without them the Python code, their reference, does the same work.
Each module records the SHA-256 of the source it was built from: a binary left from an older
source is not used (with a warning), since it would read differently from the code beside it.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import types
from pathlib import Path

log = logging.getLogger(__name__)


def built(name: str, source: Path) -> types.ModuleType | None:
    """The module ``inboxsync.<name>`` when it is built from ``source``.

    Args:
        name: The module's name in the package (``_cparse``, ``_cfetch``).
        source: The C source it must have been built from (checked when it exists: an installed
            package without its sources trusts its binary).

    Returns:
        The module; None when it is not built (no compiler at install) or was built from another
        source (a stale binary: ``make install`` rebuilds it).
    """
    try:
        module = importlib.import_module(f"inboxsync.{name}")
    except ImportError:
        return None
    if source.is_file():
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if getattr(module, "SOURCE_SHA256", None) != digest:
            log.warning(
                "%s was built from another source of %s: not used; run make install",
                module.__file__,
                source.name,
            )
            return None
    return module

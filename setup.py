"""The one thing pyproject.toml cannot say: the parse's optional C fast path.

`inboxsync._cparse` is built from include/inboxsync/_cparse.c when a C compiler and the Python
headers are there; without them the install goes on and `inboxsync.parse` runs its pure Python
path (the reference, same results). The module records the SHA-256 of the source it was built
from, so that `inboxsync.parse` ignores a binary left from an older source.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = Path("include/inboxsync/_cparse.c")

setup(
    ext_modules=[
        Extension(
            "inboxsync._cparse",
            [str(SOURCE)],
            define_macros=[
                (
                    "INBOXSYNC_CPARSE_SOURCE",
                    f'"{hashlib.sha256(SOURCE.read_bytes()).hexdigest()}"',
                )
            ],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)

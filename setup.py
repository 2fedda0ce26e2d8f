"""The one thing pyproject.toml cannot say: the optional C fast paths.

`inboxsync._cparse` (the parse's) and `inboxsync._cfetch` (the FETCH reader's) are built from
include/inboxsync/*.c when a C compiler and the Python headers are there; without them the install
goes on and the pure Python code runs (the reference, same results). Each module records the
SHA-256 of the source it was built from, so that `inboxsync.native` ignores a binary left from an
older source.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup


def _extension(name: str) -> Extension:
    source = Path(f"include/inboxsync/{name}.c")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return Extension(
        f"inboxsync.{name}",
        [str(source)],
        define_macros=[(f"INBOXSYNC_{name.lstrip('_').upper()}_SOURCE", f'"{digest}"')],
        extra_compile_args=["-O2", "-Wall", "-Wextra"],
        optional=True,
    )


setup(ext_modules=[_extension("_cparse"), _extension("_cfetch")])

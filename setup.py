"""Build the one native module (the record walk of produce validation).

Everything else is in pyproject.toml. The extension is optional: without a C compiler
the package installs and `strom.protocol.record_walk` falls back to its Python walk.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "strom.protocol._recordwalk",
            ["src/strom/protocol/_recordwalk.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)

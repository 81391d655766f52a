"""The C extension wekacoin.crypto._ecvrf (ECVRF verification); the rest is in pyproject.toml.

`pip install .` and `pip install -e .` compile it, which needs a C compiler (gcc) and the Python
headers: .ci/system-packages installs them. There is no fallback without a compiler: the build
stops with the message below. For a checkout used in place: `python setup.py build_ext --inplace`.
"""

import sys

import setuptools
from setuptools import Distribution, Extension, setup
from setuptools.command.build_ext import build_ext

CSRC = "wekacoin/crypto/csrc"

EXTENSION = Extension(
    "wekacoin.crypto._ecvrf",
    sources=[f"{CSRC}/ecvrf.c", f"{CSRC}/ed25519.c", f"{CSRC}/sha512.c"],
    depends=[f"{CSRC}/ed25519.h", f"{CSRC}/field.h", f"{CSRC}/sha512.h"],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
)


class BuildExt(build_ext):
    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            raise SystemExit(
                f"error: cannot compile the C extension {ext.name} ({error}).\n"
                "WekaCoin needs a C compiler (gcc) and the Python development headers to install:"
                " on Debian/Ubuntu run `.ci/system-packages runtime`"
                " (or `apt-get install gcc libc6-dev python3-dev`), then install again."
            ) from error


def build_ext_only() -> None:
    """`setup.py build_ext ...` for setuptools older than 77, which cannot read pyproject.toml
    (its `license` is a PEP 639 string). pip always builds with a recent one."""
    if sys.argv[1:2] != ["build_ext"]:
        raise SystemExit(f"setuptools {setuptools.__version__} is too old (>= 77 needed)")
    dist = Distribution({"name": "wekacoin", "ext_modules": [EXTENSION]})
    dist.cmdclass["build_ext"] = BuildExt
    dist.script_name, dist.script_args = "setup.py", sys.argv[1:]
    dist.parse_command_line()
    dist.run_commands()


if int(setuptools.__version__.split(".")[0]) < 77:
    build_ext_only()
else:
    setup(ext_modules=[EXTENSION], cmdclass={"build_ext": BuildExt})

"""The C extension wekacoin.crypto._ecvrf (ECVRF verification); everything else is in pyproject.toml.

`pip install .` and `pip install -e .` compile it, which needs a C compiler (gcc) and the Python
headers: .ci/system-packages installs them. There is no fallback without a compiler: the build
stops with the message below. For a checkout used in place, `python setup.py build_ext --inplace`.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CSRC = "wekacoin/crypto/csrc"


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


setup(
    ext_modules=[
        Extension(
            "wekacoin.crypto._ecvrf",
            sources=[f"{CSRC}/ecvrf.c", f"{CSRC}/ed25519.c", f"{CSRC}/sha512.c"],
            depends=[f"{CSRC}/ed25519.h", f"{CSRC}/sha512.h"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)

"""Build: the one list of Cython extensions and the one set of compiler directives."""
from setuptools import Extension, setup
from Cython.Build import cythonize

# One list: every compiled module of the processor core.
CORE = ["_mem", "_exec", "_intr", "_seg", "_ops_alu", "_ops_ctl", "_ops_str", "_ops_sys", "_ops_fast"]

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,     # every index into a C array is guarded by an explicit check
    "wraparound": False,
    "cdivision": True,        # division by zero is checked before (#DE), never by Python
    "initializedcheck": False,
    "embedsignature": True,
}

extensions = [
    Extension(f"x86.{name}", [f"x86/{name}.pyx"], extra_compile_args=["-O2", "-Wno-unused-function"])
    for name in CORE
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, nthreads=2, quiet=True))

"""Build: the one list of Cython extensions and the one set of compiler directives."""
from setuptools import Extension, setup
from Cython.Build import cythonize

# One list: every compiled module, by package: the processor core, VT-x's hot path, the EPT walker.
MODULES = {
    "x86": ["_mem", "_exec", "_slat", "_state", "_intr", "_seg", "_ops_alu", "_ops_ctl", "_ops_str", "_ops_sys", "_ops_io", "_ops_desc", "_ops_fast", "_task"],
    "vmx": ["_vmcs", "_transition", "_translation"],
    "ept": ["_walk", "_unit"],
}

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,     # every index into a C array is guarded by an explicit check
    "wraparound": False,
    "cdivision": True,        # division by zero is checked before (#DE), never by Python
    "initializedcheck": False,
    "embedsignature": True,
}

extensions = [
    Extension(f"{pkg}.{name}", [f"{pkg}/{name}.pyx"], extra_compile_args=["-O2", "-Wno-unused-function"])
    for pkg, names in MODULES.items() for name in names
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, nthreads=2, quiet=True))

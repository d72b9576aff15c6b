"""Import rules (ARCHITECTURE.md): x86 imports none of the others; vmx and svm never import each
other; ept and iommu do not import vmx/svm; nothing in the models imports hvsim or rich."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "x86": {"vmx", "svm", "ept", "iommu", "hvsim", "rich"},
    "vmx": {"svm", "hvsim", "rich"},
    "svm": {"vmx", "hvsim", "rich"},
    "ept": {"vmx", "svm", "hvsim", "rich"},
    "iommu": {"vmx", "svm", "hvsim", "rich"},
}


def imported_packages(path: pathlib.Path):
    text = path.read_text()
    if path.suffix in (".pyx", ".pxd"):
        names = set()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("import", "cimport", "from"):
                names.add(parts[1].split(".")[0])
        return names
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_rules(package):
    for path in (ROOT / package).rglob("*"):
        if path.suffix in (".py", ".pyx", ".pxd"):
            bad = imported_packages(path) & FORBIDDEN[package]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"

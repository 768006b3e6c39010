"""The architecture, checked: layers import downward only, no cycles, no private attributes
of other libraries, thin command lines, and references that resolve inside the repository."""

import ast
import importlib
import os
import re
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import REPO

# Bottom first: a package may import only packages at or below its own position.
LAYERS = ("electra_common", "pretrain_data", "electra_tf", "finetune", "electra_quickstart")
# `obj._name` of other libraries that have no public equivalent: (file, attribute) -> why.
PRIVATE_ATTRIBUTE_ALLOWLIST = {}


def python_files(package):
    for root, _, names in os.walk(REPO / package):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def module_name(path):
    relative = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return relative[:-len(".__init__")] if relative.endswith(".__init__") else relative


def imports(path):
    """Every module `path` imports (function-level imports included), as absolute names."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    name = module_name(path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.append(base)
            # `from pkg import module` imports pkg.module when that is a module.
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def project_modules():
    return {module_name(p): p for layer in LAYERS for p in python_files(layer)}


def test_layers_import_downward_only():
    upward = []
    for name, path in project_modules().items():
        own = LAYERS.index(name.split(".")[0])
        for imported in imports(path):
            top = imported.split(".")[0]
            if top == "tests" or (top in LAYERS and LAYERS.index(top) > own):
                upward.append(f"{name} imports {imported}")
    assert not upward, "imports that point up the layers " + " > ".join(
        reversed(LAYERS)) + ":\n" + "\n".join(upward)


def test_no_import_cycles():
    modules = project_modules()
    graph = {name: sorted({m for m in imports(path) if m in modules and m != name})
             for name, path in modules.items()}
    # A package imports its own __init__ implicitly; only explicit edges count.
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for target in graph[node]:
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_upward_imports_and_cycles(tmp_path):
    """The two checks above would fail on a planted upward import and a planted cycle."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from finetune import heads\nimport tests.conftest\n")
    b.write_text("def f():\n    from electra_tf.models import encoder\n")
    assert "finetune.heads" in imports(str(a)) and "tests.conftest" in imports(str(a))
    assert "electra_tf.models.encoder" in imports(str(b))


def private_attributes(path):
    """`(line, expression)` of every `x._name` whose `x` is not self, cls or super()."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                continue
            found.append((node.lineno, f"{ast.unparse(owner)}.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] not in LAYERS:
            found += [(node.lineno, f"from {node.module} import {alias.name}")
                      for alias in node.names if alias.name.startswith("_")]
    return found


def test_no_private_attributes_of_other_objects():
    """Other libraries only through public API; our own modules only through public names."""
    found = []
    for layer in LAYERS:
        for path in python_files(layer):
            relative = os.path.relpath(path, REPO)
            for line, expression in private_attributes(path):
                if (relative, expression.rsplit(".", 1)[-1]) not in PRIVATE_ATTRIBUTE_ALLOWLIST:
                    found.append(f"{relative}:{line}: {expression}")
    assert not found, "private attributes used:\n" + "\n".join(found)


def test_the_private_attribute_check_sees_them(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("import keras\nclass A:\n    def f(self, layer):\n"
                    "        self._ok = layer._intermediate_dense\n"
                    "        return super()._g() + keras.src._h\n")
    assert [e for _, e in private_attributes(str(path))] == [
        "layer._intermediate_dense", "keras.src._h"]


def test_serving_entry_points_exist_above_the_core():
    """The builders the core finds through the `electra_tf.serving` entry point group:
    each importable, and defined above `electra_tf` (a layer that may import the core)."""
    with open(REPO / "pyproject.toml", "rb") as f:
        group = tomllib.load(f)["project"]["entry-points"]["electra_tf.serving"]
    assert group
    for name, target in group.items():
        module, _, function = target.partition(":")
        assert LAYERS.index(module.split(".")[0]) > LAYERS.index("electra_tf"), name
        assert callable(getattr(importlib.import_module(module), function)), name


def commands():
    """The console scripts of pyproject.toml: {script name: module}."""
    with open(REPO / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    return {name: target.split(":")[0] for name, target in scripts.items()}


HELP_CHECK = """
import runpy, sys
sys.argv = ["{module}", "--help"]
code = None
try:
    runpy.run_module("{module}", run_name="__main__")
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in ("tensorflow", "keras", "tensorflow_text") if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "-")
"""


@pytest.mark.parametrize("module", sorted(set(commands().values())))
def test_every_command_answers_help_without_tensorflow(module):
    result = subprocess.run([sys.executable, "-c", HELP_CHECK.format(module=module)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--" in result.stdout.split("EXIT")[0], "no flags listed"
    assert result.stdout.strip().endswith("EXIT 0 HEAVY -"), result.stdout[-500:]


def shipped_text_files():
    """What users get with a clone: packages, configs, docs, README, benches, tests."""
    for top in LAYERS + ("configs", "docs", "bench", "tests"):
        for root, _, names in os.walk(REPO / top):
            for name in names:
                if name.endswith((".py", ".md", ".json", ".toml", ".txt")):
                    yield os.path.join(root, name)
    yield str(REPO / "README.md")
    yield str(REPO / "pyproject.toml")


def test_references_resolve_inside_the_repository():
    """No pointer to the unshipped spec (`spec §…`, `caveat C…`, `../shared`); every
    `docs/*.md` named anywhere exists, and every relative Markdown link resolves."""
    bad, missing = [], []
    for path in shipped_text_files():
        if path == __file__:  # the patterns themselves
            continue
        text = open(path, encoding="utf-8").read()
        relative = os.path.relpath(path, REPO)
        for pattern in (r"spec §", r"\bcaveats? C\d", r"\.\./shared", r"fixtures README"):
            bad += [f"{relative}: {m.group(0)}" for m in re.finditer(pattern, text)]
        missing += [f"{relative}: {m.group(0)}" for m in re.finditer(r"docs/[\w-]+\.md", text)
                    if not (REPO / m.group(0)).exists()]
        if path.endswith(".md"):
            prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)  # not code
            for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
                if "://" not in link and not os.path.exists(
                        os.path.join(os.path.dirname(path), link)):
                    missing.append(f"{relative}: ({link})")
    assert not bad, "references to documents users do not have:\n" + "\n".join(bad)
    assert not missing, "references to missing docs:\n" + "\n".join(missing)


def test_the_architecture_document_names_every_module():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    unnamed = [os.path.relpath(path, REPO) for layer in LAYERS for path in python_files(layer)
               if not path.endswith("__init__.py")
               and f"`{os.path.relpath(path, REPO)}`" not in text]
    assert not unnamed, "docs/architecture.md does not list: " + ", ".join(unnamed)

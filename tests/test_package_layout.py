"""The package's shape (issue 33): the lab at the top, machinery below, imports one way, no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gan_helpers"
SUB_PACKAGES = ("runs", "datasets", "storage")
TOP_LIMIT, TOP_TOTAL, ANY_LIMIT = 320, 2500, 350  # training.py: the loop with its G_ema steps, 303 lines


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every gan_helpers module `name` imports, at any depth (function-local imports count)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("gan_helpers"):
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _is_lab(name: str) -> bool:
    parts = name.split(".")
    return len(parts) == 2 and parts[1] not in SUB_PACKAGES


def _lines(name: str) -> int:
    return len(MODULES[name].read_text().splitlines())


def test_no_import_cycle():
    seen, cycles = {}, []

    def visit(node, stack):
        seen[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if seen.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in seen:
                visit(nxt, stack + [nxt])
        seen[node] = "done"

    for name in sorted(GRAPH):
        if name not in seen:
            visit(name, [name])
    assert not cycles, "import cycles (function-local imports counted):\n" + "\n".join(cycles)


def test_lab_never_imports_the_machinery():
    # __main__ is only the entry of python -m gan_helpers: the command line, a tool
    wrong = [f"{name} imports {target}" for name in GRAPH if _is_lab(name) and name != "gan_helpers.__main__" for target in sorted(GRAPH[name])
             if target.split(".")[1] in SUB_PACKAGES]
    assert not wrong, "lab modules importing the machinery:\n" + "\n".join(wrong)


def test_no_module_getattr():
    shims = [name for name, path in MODULES.items()
             if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(path.read_text()).body)]
    assert not shims, f"module-level __getattr__ in {shims}"


def test_module_sizes():
    lab = {name: _lines(name) for name in MODULES if _is_lab(name) and name.split(".")[1] not in ("__init__", "__main__")}
    assert sum(lab.values()) <= TOP_TOTAL, f"the lab at the top is {sum(lab.values())} lines (at most {TOP_TOTAL})"
    big_lab = {n: c for n, c in lab.items() if c > TOP_LIMIT}
    assert not big_lab, f"top-level modules over {TOP_LIMIT} lines: {big_lab}"
    big = {n: _lines(n) for n in MODULES if _lines(n) > ANY_LIMIT}
    assert not big, f"modules over {ANY_LIMIT} lines: {big}"


def test_sub_packages_exist():
    assert all((PACKAGE / sub / "__init__.py").is_file() for sub in SUB_PACKAGES)


def test_datasets_and_storage_stand_below_runs():
    wrong = [f"{name} imports {target}" for name in GRAPH if name.split(".")[1:2] in (["datasets"], ["storage"])
             for target in sorted(GRAPH[name]) if target.split(".")[1] == "runs"]
    wrong += [f"{name} imports {target}" for name in GRAPH if name.split(".")[1:2] == ["storage"]
              for target in sorted(GRAPH[name]) if target.split(".")[1] == "datasets"]
    assert not wrong, "generic code importing its users:\n" + "\n".join(wrong)


def test_no_notebook_imports_a_command_or_the_report_build():
    notebooks = sorted((PACKAGE.parent / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == 6
    for notebook in notebooks:
        text = notebook.read_text()
        assert "gan_helpers.tools" not in text and not any(f"{word} {package}" in text for word in ("from", "import")
                                                          for package in ("report", "commands")), notebook.name


def test_what_the_notebooks_load_never_loads_the_report_build_or_a_command():
    code = ("import sys, gan_helpers.runs.experiment, gan_helpers.runs.live, gan_helpers.listing, gan_helpers.latent_plots\n"
            "print(sorted(m for m in sys.modules if m in ('report', 'commands') or m.startswith(('report.', 'commands.', 'gan_helpers.tools'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent).stdout
    assert loaded.strip() == "[]"


def test_the_package_imports_neither_the_report_build_nor_the_commands_beside_it():
    wrong = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            wrong += [f"{name} imports {t}" for t in targets if t.split(".")[0] in ("report", "commands")]
    assert not wrong, "\n".join(wrong)


def test_bench_and_train_run_on_a_machine_without_the_notebook_tools():
    """The GPU machine has torch, tqdm, pillow, numpy, matplotlib, pyyaml and pytest only: no report build there."""
    code = ("import sys, commands.bench, commands.train\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('report', 'nbformat', 'nbconvert', 'papermill', 'IPython')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent).stdout
    assert loaded.strip() == "[]"

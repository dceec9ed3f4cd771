"""Static API conformance of lyra_isaac's Isaac Sim code against the real Isaac Sim wheels (no Isaac Sim install).

:func:`collect_uses` reads OUR sources (the extension and the Isaac Sim backend) by AST and lists every ``isaacsim.*``
module, class, function, method, attribute and keyword argument they use; :class:`WheelIndex` reads the
``isaacsim-*`` wheels (zip files, never installed or imported) by AST and :func:`check_uses` verifies each use
exists there with a signature that accepts the call. Both sides come from source, so the check follows the code.

Non-isaacsim Kit names (``omni.*``, ``carb``) and ``pxr`` names are collected too (:func:`collect_names`), so the
test can demand a documentation reference for each Kit name and check the pxr names against usd-core.
"""

from __future__ import annotations

import ast
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

EXT_MODULE = re.compile(r"^isaacsim/exts(?:Deprecated)?/[^/]+/(?P<path>.+)\.py$")


@dataclass(frozen=True)
class Use:
    """One use of the Isaac Sim API in our code."""

    kind: str
    """'module' (import a module), 'symbol' (module attribute), 'call' (call of a function, class or method),
    'attr' (attribute of a class instance)."""
    target: str
    """Dotted name: module, module.symbol, or module.Class.member."""
    n_positional: int = 0
    keywords: tuple[str, ...] = ()
    where: str = ""

    def __str__(self) -> str:
        extra = f" with {self.n_positional} positional, keywords {list(self.keywords)}" if self.kind == "call" else ""
        return f"{self.where}: {self.kind} {self.target}{extra}"


# ------------------------------------------------------------------------------------------------- wheel side
class WheelIndex:
    """Python modules inside isaacsim-* wheels: ``isaacsim/exts/<ext>/<module path>.py`` -> module name."""

    def __init__(self, wheels: list[Path]):
        self._members: dict[str, tuple[zipfile.ZipFile, str]] = {}
        self._trees: dict[str, ast.Module] = {}
        for wheel in wheels:
            archive = zipfile.ZipFile(wheel)
            for name in archive.namelist():
                match = EXT_MODULE.match(name)
                if not match:
                    continue
                module = match["path"].replace("/", ".")
                if module.endswith(".__init__"):
                    module = module[: -len(".__init__")]
                # exts/ (current) wins over extsDeprecated/ when both hold a module
                if module not in self._members or "/extsDeprecated/" in self._members[module][1]:
                    self._members[module] = (archive, name)

    def __len__(self) -> int:
        return len(self._members)

    def has_module(self, module: str) -> bool:
        return module in self._members or any(m.startswith(module + ".") for m in self._members)

    def tree(self, module: str) -> ast.Module | None:
        if module not in self._members:
            return None
        if module not in self._trees:
            archive, name = self._members[module]
            self._trees[module] = ast.parse(archive.read(name).decode("utf-8"))
        return self._trees[module]

    def _is_package(self, module: str) -> bool:
        return module in self._members and self._members[module][1].endswith("/__init__.py")

    def resolve(self, module: str, name: str, depth: int = 0) -> tuple[str, ast.AST | None, str] | None:
        """Find ``name`` in ``module``: ("module"|"class"|"function"|"value", node, defining module) or None."""
        if depth > 12:
            return None
        if self.has_module(f"{module}.{name}"):
            return ("module", None, f"{module}.{name}")
        tree = self.tree(module)
        if tree is None:
            return None
        stars = []
        for node in _top_level(tree):
            if isinstance(node, ast.ClassDef) and node.name == name:
                return ("class", node, module)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return ("function", node, module)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return ("value", node, module)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                return ("value", node, module)
            if isinstance(node, ast.ImportFrom):
                source = self._absolute(module, node)
                for alias in node.names:
                    if alias.name == "*":
                        stars.append(source)
                    elif (alias.asname or alias.name) == name:
                        return self.resolve(source, alias.name, depth + 1)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname == name and self.has_module(alias.name):
                        return ("module", None, alias.name)
        for source in stars:
            found = self.resolve(source, name, depth + 1)
            if found is not None:
                return found
        return None

    def _absolute(self, module: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = module.split(".")
        base = parts if self._is_package(module) else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def member(self, module: str, cls: ast.ClassDef, name: str, depth: int = 0) -> ast.AST | None:
        """Definition of ``name`` in class ``cls`` (defined in ``module``) or its bases; None if absent."""
        if depth > 12:
            return None
        for node in cls.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return node
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return node
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                return node
        for node in ast.walk(cls):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr == name
                    and isinstance(node.value, ast.Name) and node.value.id == "self"):
                return node
        for base in cls.bases:
            if isinstance(base, ast.Name):
                found = self.resolve(module, base.id)
                if found and found[0] == "class":
                    result = self.member(found[2], found[1], name, depth + 1)
                    if result is not None:
                        return result
        return None


def _top_level(tree: ast.Module):
    """Top-level statements, looking into if/try blocks (conditional imports and definitions)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.If, ast.Try)):
            stack[:0] = node.body + getattr(node, "orelse", []) + [s for h in getattr(node, "handlers", [])
                                                                   for s in h.body]
            continue
        yield node


def _decorators(node: ast.AST) -> set[str]:
    return {d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else ""
            for d in getattr(node, "decorator_list", [])}


def accepts(fn: ast.FunctionDef | ast.AsyncFunctionDef, n_positional: int, keywords: tuple[str, ...],
            bound: bool) -> str | None:
    """None if ``fn`` accepts the call, else why not. ``bound``: called through an instance or class (drop self/cls
    unless it is a staticmethod)."""
    args = fn.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    if bound and "staticmethod" not in _decorators(fn) and positional:
        positional = positional[1:]
    if n_positional > len(positional) and args.vararg is None:
        return f"takes {len(positional)} positional arguments, called with {n_positional}"
    named = {a.arg for a in args.args + args.kwonlyargs} - {"self", "cls"}
    unknown = [k for k in keywords if k not in named]
    if unknown and args.kwarg is None:
        return f"has no parameter(s) {', '.join(unknown)} (it takes {sorted(named)})"
    return None


# --------------------------------------------------------------------------------------------------- our side
@dataclass
class _Imports:
    modules: dict[str, str] = field(default_factory=dict)
    """local name -> module (``import isaacsim.x.y as a``)."""
    symbols: dict[str, tuple[str, str]] = field(default_factory=dict)
    """local name -> (module, name) (``from isaacsim.x import Name``)."""


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _imports(tree: ast.Module, prefixes: tuple[str, ...]) -> _Imports:
    out = _Imports()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(prefixes):
                    out.modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and node.module.startswith(prefixes):
            for alias in node.names:
                out.symbols[alias.asname or alias.name] = (node.module, alias.name)
    return out


def _module_attr(node: ast.AST, imports: _Imports) -> str | None:
    """``a.b.c`` where ``a`` (or a dotted prefix) is an imported module -> full dotted name; else None."""
    dotted = _dotted(node)
    if dotted is None:
        return None
    for local in sorted(imports.modules, key=len, reverse=True):
        if dotted == local or dotted.startswith(local + "."):
            return imports.modules[local] + dotted[len(local):]
    if dotted.split(".")[0] in imports.symbols:
        module, name = imports.symbols[dotted.split(".")[0]]
        return ".".join([module, name, *dotted.split(".")[1:]])
    return None


def collect_uses(path: Path, index: WheelIndex | None = None) -> list[Use]:
    """Every isaacsim API use in the Python file ``path`` (see :class:`Use`).

    Instances are typed by assignment: ``x = Cls(...)`` (or ``a if c else None``) makes later ``x.m(...)`` calls
    and ``x.attr`` reads uses of ``Cls.m`` / ``Cls.attr``; ``y = x`` propagates the type. Plain names are typed
    per function, attribute chains (``self._h.robot``) per file.
    """
    tree = ast.parse(path.read_text())
    imports = _imports(tree, ("isaacsim",))
    where = path.name
    uses: list[Use] = [Use("module", m, where=where) for m in imports.modules.values()]
    uses += [Use("symbol", f"{m}.{n}", where=where) for m, n in imports.symbols.values()]

    # Types are scoped: plain names per function (a parameter called like a typed local elsewhere stays untyped),
    # attribute chains such as self._h.robot across the file.
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    own = {id(scope): list(_own_nodes(scope)) for scope in scopes}
    local_types: dict[int, dict[str, str]] = {id(scope): {} for scope in scopes}
    chain_types: dict[str, str] = {}

    def type_of(expr: ast.AST, scope: ast.AST) -> str | None:
        name = _dotted(expr)
        if name is None:
            return None
        return local_types[id(scope)].get(name) if isinstance(expr, ast.Name) else chain_types.get(name)

    changed = True
    while changed:
        changed = False
        for scope in scopes:
            for node in own[id(scope)]:
                if not isinstance(node, ast.Assign):
                    continue
                value = node.value.body if isinstance(node.value, ast.IfExp) else node.value
                cls = None
                if isinstance(value, ast.Call):
                    cls = _module_attr(value.func, imports)
                    if cls is not None and not cls.rsplit(".", 1)[-1][:1].isupper():
                        cls = None  # a function's return value: its type is beyond a static check
                else:
                    cls = type_of(value, scope)
                if cls is None:
                    continue
                for target in node.targets:
                    name = _dotted(target)
                    table = local_types[id(scope)] if isinstance(target, ast.Name) else chain_types
                    if name and table.get(name) != cls:
                        table[name] = cls
                        changed = True

    for scope in scopes:
        nodes = own[id(scope)]
        called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
        for node in nodes:
            line = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                keywords = tuple(k.arg for k in node.keywords if k.arg is not None)
                func = node.func
                target = _module_attr(func, imports)
                if target is None and isinstance(func, ast.Attribute) and type_of(func.value, scope):
                    target = f"{type_of(func.value, scope)}.{func.attr}"
                if target is not None:
                    uses.append(Use("call", target, len(node.args), keywords, line))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and id(node) not in called:
                cls = type_of(node.value, scope)
                if cls:
                    uses.append(Use("attr", f"{cls}.{node.attr}", where=line))
    return uses


def _own_nodes(scope: ast.AST):
    """The nodes of a module or function body, not descending into nested function definitions."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ClassDef):
            stack.extend(n for n in node.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def check_uses(uses: list[Use], index: WheelIndex) -> list[str]:
    """The uses that the wheels do not support, one sentence each (empty: all good)."""
    problems = []
    for use in uses:
        if use.kind == "module":
            if not index.has_module(use.target):
                problems.append(f"{use}: no such module in the wheels")
            continue
        problem = _check_one(use, index)
        if problem:
            problems.append(f"{use}: {problem}")
    return problems


def _check_one(use: Use, index: WheelIndex) -> str | None:
    parts = use.target.split(".")
    # longest prefix that is a module
    for cut in range(len(parts), 0, -1):
        if index.has_module(".".join(parts[:cut])):
            break
    else:
        return "no isaacsim module found"
    module, rest = ".".join(parts[:cut]), parts[cut:]
    if not rest:
        return None if use.kind != "call" else "a module is not callable"
    found = index.resolve(module, rest[0])
    if found is None:
        return f"'{rest[0]}' not found in {module}"
    kind, node, def_module = found
    bound = False
    for attr in rest[1:]:
        if kind != "class":
            return None  # attribute of a value or function: beyond a static check
        member = index.member(def_module, node, attr)
        if member is None:
            return f"class {node.name} has no member '{attr}'"
        node, bound = member, True
        kind = "function" if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) else "value"
    if use.kind != "call":
        return None
    if kind == "class":
        init = index.member(def_module, node, "__init__")
        if init is None or not isinstance(init, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None if not use.keywords and not use.n_positional else f"class {node.name} has no __init__"
        return accepts(init, use.n_positional, use.keywords, bound=True)
    if kind == "function":
        return accepts(node, use.n_positional, use.keywords, bound=bound)
    return None


def collect_names(path: Path, prefixes: tuple[str, ...] = ("omni", "carb")) -> set[str]:
    """Dotted names of the modules and symbols under ``prefixes`` a file uses: imported modules, imported symbols, and
    attributes read off them (``import omni.ui as ui`` + ``ui.Window`` -> ``omni.ui.Window``)."""
    tree = ast.parse(path.read_text())
    imports = _imports(tree, prefixes)
    names = {f"{m}.{n}" for m, n in imports.symbols.values()} | set(imports.modules.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            full = _module_attr(node, imports)
            if full:
                names.add(full)
    # keep the longest chains: omni.kit.app.get_app rather than also omni.kit.app
    return {n for n in names if not any(o.startswith(n + ".") for o in names)}

"""Find the candidate module in what a model actually wrote.

Real answers are not clean: prose before and after, several code blocks (a sketch, then the
final version; CUDA in its own ```cuda block), ```py or unlabeled fences, a closing fence
lost to ``max_tokens``, ``<think>`` blocks of reasoning models. ``extract_candidate`` returns
the module source or raises ``ParseError`` with a reason a person (and the model, in a fix
prompt) can act on.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

from autotuner import pyast
from autotuner.errors import ParseError

PYTHON_LANGS = {"python", "py", "python3", "py3"}
CUDA_LANGS = {"cuda", "cu", "cuh", "cpp", "c++", "cxx", "c", "cc", "h", "hpp"}
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+.-]*)[^\n`]*$")
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_SOURCE_NAME = re.compile(r"(src|source|kernel|code|cuda)", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    lang: str  # lower-cased fence label, "" when unlabeled
    code: str
    start_line: int  # 1-based line of the opening fence in the response
    closed: bool

    @property
    def is_python(self) -> bool:
        return self.lang in PYTHON_LANGS or (self.lang == "" and _looks_python(self.code))

    @property
    def is_cuda(self) -> bool:
        return self.lang in CUDA_LANGS or (self.lang == "" and "__global__" in self.code and not _looks_python(self.code))


def strip_reasoning(text: str) -> str:
    """Drop ``<think>...</think>`` blocks (and a reasoning prefix closed by a lone ``</think>``)."""
    text = _THINK.sub("", text)
    for tag in ("think", "thinking", "reasoning"):
        close = f"</{tag}>"
        if close in text.lower():  # the opening tag was in the chat template, not the answer
            text = text[text.lower().rfind(close) + len(close):]
        elif f"<{tag}>" in text.lower():
            raise ParseError(f"response ended inside a <{tag}> block (reasoning cut off before any code)")
    return text


def code_blocks(text: str) -> list[Block]:
    """Every fenced block, in order; the last may be unclosed (a truncated answer)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, lang, start = match.group(1), match.group(2).lower(), i
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and stripped.strip(fence[0]) == "":
                closed = True
                break
            body.append(lines[i])
            i += 1
        blocks.append(Block(lang, "\n".join(body).strip("\n") + "\n", start + 1, closed))
        i += 1
    return blocks


def extract_candidate(response: str) -> str:
    """The candidate module's source from a model response, or ``ParseError`` with a reason."""
    if not response or not response.strip():
        raise ParseError("empty response")
    text = strip_reasoning(response)
    blocks = code_blocks(text)
    if not blocks:
        if _parses(text) and _defines_model_new(text):  # bare code, no fences
            return text.strip() + "\n"
        raise ParseError("no ```python code block in the response")

    with_model = [b for b in blocks if b.is_python and _mentions_model_new(b.code)]
    if not with_model:
        with_model = [b for b in blocks if _mentions_model_new(b.code)]  # a mislabeled fence
    if not with_model:
        python = [b for b in blocks if b.is_python]
        what = "the python code block defines" if python else "no ```python code block; the response's code blocks define"
        raise ParseError(f"{what} no class ModelNew")

    parsing = [b for b in with_model if _parses(b.code)]
    if not parsing:
        block = with_model[-1]
        if not block.closed:
            last = len(text.splitlines())
            raise ParseError(f"response truncated at line {last} (code block opened at line {block.start_line} "
                             "never closed, and what came does not parse)")  # fmt: skip
        raise ParseError(f"the code block at line {block.start_line} is not valid Python: {_syntax_error(block.code)}")
    chosen = parsing[-1]  # a revised version usually comes last
    donors = [b for b in blocks if b.is_python and b is not chosen and not _mentions_model_new(b.code) and _parses(b.code)]
    source = _stitch(_stitch_python(chosen.code, donors), [b for b in blocks if b.is_cuda])
    if not _defines_model_new(source):
        raise ParseError("the code block mentions ModelNew but defines no top-level class ModelNew")
    return source


def _stitch(source: str, cuda_blocks: list[Block]) -> str:
    """Put CUDA from separate ```cuda blocks into the module when it names a missing variable."""
    missing = [name for name in _undefined_names(source) if _SOURCE_NAME.search(name)]
    if not missing or not cuda_blocks:
        return source
    if len(missing) == len(cuda_blocks):
        pairs = list(zip(missing, (b.code for b in cuda_blocks)))
    elif len(missing) == 1:
        pairs = [(missing[0], "\n".join(b.code for b in cuda_blocks))]
    else:
        raise ParseError(f"the python block uses {missing} but the response has {len(cuda_blocks)} CUDA blocks; "
                         "put the CUDA source in the module as string constants")  # fmt: skip
    constants = []
    for name, cuda in pairs:
        quote = "'''" if "'''" not in cuda else '"""'
        if quote in cuda or cuda.rstrip().endswith("\\"):
            raise ParseError(f"the CUDA block for {name} cannot be quoted; put it in the module as a string constant")
        constants.append(f"{name} = r{quote}\n{cuda}{quote}\n")
    lines = source.splitlines(keepends=True)
    at = _after_imports(source)
    stitched = "".join(lines[:at]) + "\n" + "\n".join(constants) + "\n" + "".join(lines[at:])
    if not _parses(stitched):
        raise ParseError("the module with its CUDA blocks stitched in does not parse")
    return stitched


def _stitch_python(source: str, donors: list[Block]) -> str:
    """Put in other python blocks (e.g. ``SOURCE = r'''...'''`` alone) that define missing names."""
    missing = set(_undefined_names(source))
    needed = [b.code for b in donors if missing & _top_level_names(b.code)]
    if not needed:
        return source
    lines = source.splitlines(keepends=True)
    at = _after_imports(source)
    stitched = "".join(lines[:at]) + "\n" + "\n".join(needed) + "\n" + "".join(lines[at:])
    return stitched if _parses(stitched) else source


def _top_level_names(code: str) -> set[str]:
    names: set[str] = set()
    for node in pyast.parse(code).body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _after_imports(source: str) -> int:
    """Line index just after the leading docstring and imports."""
    tree = pyast.parse(source)
    end = 0
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (is_doc and end == 0):
            end = node.end_lineno or node.lineno
        else:
            break
    return end


def _undefined_names(source: str) -> list[str]:
    """Names read somewhere in the module but bound nowhere (nor builtins), in order of use."""
    tree = pyast.parse(source)
    bound = set(dir(builtins))
    used: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                used.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return list(dict.fromkeys(name for name in used if name not in bound))


def _looks_python(code: str) -> bool:
    return bool(re.search(r"^\s*(import |from \S+ import |class |def )", code, re.MULTILINE))


def _mentions_model_new(code: str) -> bool:
    return re.search(r"\bclass\s+ModelNew\b", code) is not None


def _defines_model_new(code: str) -> bool:
    try:
        tree = pyast.parse(code)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body)


def _parses(code: str) -> bool:
    try:
        pyast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _syntax_error(code: str) -> str:
    try:
        pyast.parse(code)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    return "?"


def prose(response: str, limit: int = 500) -> str:
    """What the model wrote outside its code blocks (and reasoning), squeezed to one line."""
    try:
        text = strip_reasoning(response)
    except ParseError:
        return ""
    outside, inside = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            outside.append(line)
    squeezed = " ".join(" ".join(outside).split())
    return squeezed if len(squeezed) <= limit else squeezed[: limit - 3] + "..."


def params_of(source: str) -> tuple[dict[str, list], dict[str, object]]:
    """The candidate's ``PARAMS`` choices, and the defaults ``ModelNew.__init__`` gives them.

    Read from the source (never executed). A PARAMS that is not a literal dict of lists
    gives ``({}, {})``; a tunable without a literal default in ``__init__`` defaults to its
    first choice.
    """
    tree = pyast.parse(source)
    space: dict[str, list] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PARAMS" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError):
                return {}, {}
            if isinstance(value, dict) and all(isinstance(v, (list, tuple)) and v for v in value.values()):
                space = {str(k): list(v) for k, v in value.items()}
    defaults: dict[str, object] = {name: choices[0] for name, choices in space.items()}
    init = _model_new_init(tree)
    if init is not None:
        args = init.args.posonlyargs + init.args.args
        pairs = list(zip(args[len(args) - len(init.args.defaults):], init.args.defaults))
        pairs += [(a, d) for a, d in zip(init.args.kwonlyargs, init.args.kw_defaults) if d is not None]
        for arg, default in pairs:
            if arg.arg in space:
                try:
                    defaults[arg.arg] = ast.literal_eval(default)
                except (ValueError, SyntaxError):
                    pass
    return space, defaults


def _model_new_init(tree: ast.Module) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "ModelNew":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return item
    return None

"""Syntax highlighting with Pygments: HTML with CSS classes (no inline styles), escaped by Pygments."""

from __future__ import annotations

try:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import CudaLexer, DiffLexer, PythonLexer
except ImportError as e:  # the web extra
    from autotuner.web import WebExtraMissingError

    raise WebExtraMissingError(e.name) from None

CSS_CLASS = "hl"


def _looks_like_python(source: str) -> bool:
    """A candidate module (Python launching CUDA from strings) rather than bare CUDA C."""
    return any(mark in source for mark in ("class ModelNew", "\nimport ", "\nfrom ", "def forward")) or source.startswith(("import ", "from "))


def source_html(source: str, language: str = "cuda") -> str:
    """A kernel's source as highlighted HTML with line numbers."""
    lexer = PythonLexer() if language != "cuda" or _looks_like_python(source) else CudaLexer()
    return highlight(source, lexer, HtmlFormatter(cssclass=CSS_CLASS, linenos="table", wrapcode=True))


def diff_html(lines: list[str]) -> str:
    return highlight("\n".join(lines) + "\n", DiffLexer(), HtmlFormatter(cssclass=CSS_CLASS, wrapcode=True))


def python_html(source: str) -> str:
    return highlight(source, PythonLexer(), HtmlFormatter(cssclass=CSS_CLASS, linenos="table", wrapcode=True))


def stylesheet() -> str:
    return HtmlFormatter(style="default").get_style_defs(f".{CSS_CLASS}")

"""Python source read by the tests that look at monitor's own code (its imports, the code
that makes kept evidence)."""

from __future__ import annotations

import ast
import gc


def parse_python(source: str) -> ast.Module:
    """`ast.parse`, with the cyclic collector held off meanwhile. On Python 3.11 the parser's
    recursion count is shared: an object collected during the parse whose finalizer formats
    a traceback (asyncio's "exception was never retrieved" does, and the traceback's carets
    parse the source line again) makes the outer parse fail with "SystemError: AST
    constructor recursion depth mismatch", whatever test left that object behind."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source)
    finally:
        if enabled:
            gc.enable()

"""Candidate's C core (``tinydancer/routing/_candidate.c``), or its pure-Python twin where it was not built.

The package is installed with an optional C extension: where no C compiler was available, the same names come
from ``tinydancer.routing._candidate_fallback`` with the same behaviour, slower (``COMPILED`` says which). The
twin also gives the type checker the names' types.

Examples:
    >>> from tinydancer.routing.candidate_core import COMPILED
    >>> isinstance(COMPILED, bool)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinydancer.routing._candidate_fallback import (
        CandidateFields,
        candidate_columns,
        copy_float32_rows,
        install_vectorcall,
    )

    COMPILED: bool
else:
    try:
        from tinydancer.routing._candidate import (
            CandidateFields,
            candidate_columns,
            copy_float32_rows,
            install_vectorcall,
        )

        COMPILED = True
    except ImportError:  # installed without a C compiler
        from tinydancer.routing._candidate_fallback import (
            CandidateFields,
            candidate_columns,
            copy_float32_rows,
            install_vectorcall,
        )

        COMPILED = False

__all__ = ["COMPILED", "CandidateFields", "candidate_columns", "copy_float32_rows", "install_vectorcall"]

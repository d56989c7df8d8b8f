from typing import Any

class CandidateFields:
    def __init__(
        self,
        id: Any,
        embedding: Any,
        metadata: Any = None,
        created_at: Any = None,
        access_count: Any = 0,
        success_rate: Any = 0.0,
    ) -> None: ...

def install_vectorcall(cls: type[CandidateFields]) -> None: ...
def candidate_columns(candidates: Any, cls: type[CandidateFields]) -> tuple[Any, ...] | None: ...
def copy_float32_rows(rows: Any, out: Any) -> bool: ...

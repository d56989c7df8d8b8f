"""The routing wing: requests, the candidate store, validation and packing, the route kernel, the breaker, the Router.

It uses the model wing for the scores and the observability wing to record every route.
"""

from __future__ import annotations

from tinydancer.routing.batch import aligned_empty, score_embeddings, score_features
from tinydancer.routing.breaker import BreakerPolicy, CircuitBreaker
from tinydancer.routing.candidate_store import CandidateStore
from tinydancer.routing.config import RouterConfig
from tinydancer.routing.kernel import DeviceModel, bucket_size, run_route_kernel
from tinydancer.routing.packing import PackedRequest, pack_request, request_features
from tinydancer.routing.prompts import (
    PROMPT_MODEL_TYPE,
    PROMPT_RESULT_COLUMNS,
    PromptBatch,
    PromptDecision,
    PromptModel,
    check_prompts,
    prompt_hash,
)
from tinydancer.routing.replay import REPLAY_COLUMNS, ReplayResult, replay
from tinydancer.routing.requests import Candidate, RoutingDecision, RoutingRequest, RoutingResponse
from tinydancer.routing.router import Router, default_inference

__all__ = [
    "PROMPT_MODEL_TYPE",
    "PROMPT_RESULT_COLUMNS",
    "REPLAY_COLUMNS",
    "BreakerPolicy",
    "Candidate",
    "CandidateStore",
    "CircuitBreaker",
    "DeviceModel",
    "PackedRequest",
    "PromptBatch",
    "PromptDecision",
    "PromptModel",
    "ReplayResult",
    "Router",
    "RouterConfig",
    "RoutingDecision",
    "RoutingRequest",
    "RoutingResponse",
    "aligned_empty",
    "bucket_size",
    "check_prompts",
    "default_inference",
    "pack_request",
    "prompt_hash",
    "replay",
    "request_features",
    "run_route_kernel",
    "score_embeddings",
    "score_features",
]

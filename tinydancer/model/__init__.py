"""The model wing: the two model families a router can serve, their files, and the text featuriser.

Pure functions of (params, inputs) and their safetensors files; it imports no other wing. FastGRNN
(Kusupati et al., 2018) is the learned router; the original's model is Tiny Dancer's one-step gated cell.
Both implement one model interface (:class:`ModelFamily`: forward on a flat parameter vector, flatten,
unflatten, save, load), and both families' files are read once and written atomically.
"""

from __future__ import annotations

from tinydancer.model.calibration_map import CALIBRATORS, Calibrator
from tinydancer.model.candidate_features import candidate_features, cosine_similarity, frequency, recency
from tinydancer.model.compression import (
    QuantizedFastGRNNParams,
    QuantizedTensor,
    dequantize_params,
    iht_project,
    model_size_bytes,
    quantize_params,
)
from tinydancer.model.family import ModelFamily, load_model
from tinydancer.model.fastgrnn import (
    FastGRNNConfig,
    FastGRNNParams,
    fastgrnn_cell,
    fastgrnn_logits,
    fastgrnn_predict,
    init_fastgrnn_params,
)
from tinydancer.model.fastgrnn_file import load_fastgrnn, save_fastgrnn
from tinydancer.model.original import CompatModelConfig, CompatParams, compat_forward, init_compat_params
from tinydancer.model.original_file import load_compat_model, save_compat_model
from tinydancer.model.prompt_artifact import (
    ConformalSpec,
    OperatingPoint,
    PromptRouterArtifact,
    load_prompt_router,
    save_prompt_router,
)
from tinydancer.model.prompt_scoring import UNCERTAINTY_MODES, PromptScorer, PromptScores
from tinydancer.model.scorer_router import (
    ScorerRouterArtifact,
    ScorerScoring,
    ScorerState,
    ServableScorer,
    load_router,
    load_scorer_router,
    save_router,
    save_scorer_router,
    tensor_to_texts,
    texts_to_tensor,
)
from tinydancer.model.served_fastgrnn import ServedFastGRNN
from tinydancer.model.text_features import (
    FeaturizerConfig,
    NormStats,
    TextFeaturizer,
    apply_norm,
    featurizer_from_metadata,
    featurizer_metadata,
    fit_norm_stats,
    hashed_ngrams,
)

__all__ = [
    "CALIBRATORS",
    "UNCERTAINTY_MODES",
    "Calibrator",
    "CompatModelConfig",
    "CompatParams",
    "ConformalSpec",
    "FastGRNNConfig",
    "FastGRNNParams",
    "FeaturizerConfig",
    "ModelFamily",
    "NormStats",
    "OperatingPoint",
    "PromptRouterArtifact",
    "PromptScorer",
    "PromptScores",
    "QuantizedFastGRNNParams",
    "QuantizedTensor",
    "ScorerRouterArtifact",
    "ScorerScoring",
    "ScorerState",
    "ServableScorer",
    "ServedFastGRNN",
    "TextFeaturizer",
    "apply_norm",
    "candidate_features",
    "compat_forward",
    "cosine_similarity",
    "dequantize_params",
    "fastgrnn_cell",
    "fastgrnn_logits",
    "fastgrnn_predict",
    "featurizer_from_metadata",
    "featurizer_metadata",
    "fit_norm_stats",
    "frequency",
    "hashed_ngrams",
    "iht_project",
    "init_compat_params",
    "init_fastgrnn_params",
    "load_compat_model",
    "load_fastgrnn",
    "load_model",
    "load_prompt_router",
    "load_router",
    "load_scorer_router",
    "model_size_bytes",
    "quantize_params",
    "recency",
    "save_compat_model",
    "save_fastgrnn",
    "save_prompt_router",
    "save_router",
    "save_scorer_router",
    "tensor_to_texts",
    "texts_to_tensor",
]

"""Every config validates its fields one way: ConfigError (a ValueError) worded "<field>: expected ..., got ...".

Each config class gets the same four kinds of mistakes where it has such a field: a string where a number
is expected, True where an integer is expected, NaN, and a value out of range; plus a few of its own.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tinydancer.errors import ConfigError
from tinydancer.learning.train import TrainConfig
from tinydancer.model.fastgrnn import FastGRNNConfig
from tinydancer.model.original import CompatModelConfig
from tinydancer.model.text_features import FeaturizerConfig
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.tracing import TracingConfig
from tinydancer.routing.config import RouterConfig
from tinydancer.validation import check_choice, check_int, check_number, check_optional

NAN = math.nan
#: Each config class with the arguments its defaults need.
CONFIGS: dict[type, dict[str, Any]] = {
    TrainConfig: {},
    FeaturizerConfig: {},
    FastGRNNConfig: {"input_dim": 4},
    CompatModelConfig: {},
    RouterConfig: {},
    LogConfig: {},
    TracingConfig: {},
}
#: (config, field, bad value, what is wrong).
MISTAKES: list[tuple[type, str, object, str]] = [
    (TrainConfig, "learning_rate", "0.1", "string"),
    (TrainConfig, "epochs", True, "bool"),
    (TrainConfig, "clip_norm", NAN, "nan"),
    (TrainConfig, "sparsity", 1.5, "range"),
    (TrainConfig, "seed", -1, "range"),
    (TrainConfig, "schedule", "linear", "choice"),
    (TrainConfig, "progress", "no", "bool flag"),
    (TrainConfig, "stop_at_accuracy", "0.8", "string"),
    (FeaturizerConfig, "dim", "64", "string"),
    (FeaturizerConfig, "max_tokens", True, "bool"),
    (FeaturizerConfig, "max_tokens", NAN, "nan"),
    (FeaturizerConfig, "max_tokens", 0, "range"),
    (FeaturizerConfig, "dim", 64.0, "float size"),
    (FastGRNNConfig, "hidden_dim", "16", "string"),
    (FastGRNNConfig, "input_dim", True, "bool"),
    (FastGRNNConfig, "zeta_init", NAN, "nan"),
    (FastGRNNConfig, "w_rank", 5, "range"),
    (FastGRNNConfig, "gate_nonlinearity", "relu", "choice"),
    (CompatModelConfig, "nu", "1.0", "string"),
    (CompatModelConfig, "rank", True, "bool"),
    (CompatModelConfig, "zeta", NAN, "nan"),
    (CompatModelConfig, "hidden_dim", 65537, "range"),
    (RouterConfig, "confidence_threshold", "0.9", "string"),
    (RouterConfig, "circuit_breaker_threshold", True, "bool"),
    (RouterConfig, "max_uncertainty", NAN, "nan"),
    (RouterConfig, "confidence_threshold", 1.5, "range"),
    (RouterConfig, "seed", 2**63, "range"),
    (RouterConfig, "inference_timeout_s", "2", "string"),
    (RouterConfig, "enable_quantization", "no", "bool flag"),
    (RouterConfig, "database_path", 3, "type"),
    (TracingConfig, "sampling_ratio", "0.5", "string"),
    (TracingConfig, "in_memory_capacity", True, "bool"),
    (TracingConfig, "export_timeout_s", NAN, "nan"),
    (TracingConfig, "sampling_ratio", 1.5, "range"),
    (TracingConfig, "export_queue_size", 0, "range"),
    (TracingConfig, "enable_stdout", "yes", "bool flag"),
    (LogConfig, "level", 10, "number"),
    (LogConfig, "renderer", True, "bool"),
    (LogConfig, "level", [], "type"),
    (LogConfig, "renderer", "xml", "choice"),
]


@pytest.mark.parametrize("config", list(CONFIGS), ids=lambda c: c.__name__)
def test_defaults_construct(config: type) -> None:
    made = config(**CONFIGS[config])
    assert made == config(**CONFIGS[config]) and hash(made) == hash(config(**CONFIGS[config]))


def test_every_config_class_is_covered_by_each_kind_of_mistake() -> None:
    kinds: dict[type, set[str]] = {}
    for config, _, _, kind in MISTAKES:
        kinds.setdefault(config, set()).add(kind)
    assert set(kinds) == set(CONFIGS)
    numeric = set(CONFIGS) - {LogConfig}  # LogConfig has no numeric field: names, a renderer and a stream
    for config in numeric:
        assert {"string", "bool", "nan", "range"} <= kinds[config], config.__name__


@pytest.mark.parametrize(
    ("config", "field", "value", "kind"), MISTAKES, ids=[f"{c.__name__}-{f}-{k}" for c, f, _, k in MISTAKES]
)
def test_a_mistake_is_a_config_error_naming_the_field(config: type, field: str, value: object, kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(**{**CONFIGS[config], field: value})
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"{field}: expected "), message
    assert message.endswith(f", got {value!r}"), message


def test_the_former_disagreements_now_agree() -> None:
    # TrainConfig raised a raw TypeError, FeaturizerConfig accepted True as a size, RouterConfig rejected both.
    with pytest.raises(ConfigError, match=r"^learning_rate: expected a finite number > 0, got '0\.1'$"):
        TrainConfig(learning_rate="0.1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^max_tokens: expected an integer >= 1, got True$"):
        FeaturizerConfig(max_tokens=True)
    with pytest.raises(ConfigError, match=r"^circuit_breaker_threshold: expected an integer >= 1, got True$"):
        RouterConfig(circuit_breaker_threshold=True)


def test_values_in_range_are_kept_as_given() -> None:
    assert TrainConfig(stop_at_accuracy=1, sparsity=0.5, seed=7).stop_at_accuracy == 1
    assert FastGRNNConfig(input_dim=4, hidden_dim=8, w_rank=4, u_rank=8).w_rank == 4
    assert RouterConfig(inference_timeout_s=None, database_path="", seed=2**63 - 1).seed == 2**63 - 1
    assert LogConfig(level="warning").level == "WARNING"
    assert TracingConfig(sampling_ratio=0, enable_stdout=False).sampling_ratio == 0


def test_the_checks_themselves() -> None:
    assert check_number("x", 2, low=0, high=2) == 2
    with pytest.raises(ConfigError, match=r"^x: expected a finite number < 2, got 2$"):
        check_number("x", 2, high=2, high_open=True)
    with pytest.raises(ConfigError, match=r"^x: expected a finite number, got 1000"):
        check_number("x", 10**400)  # an int too large for a float is not finite
    with pytest.raises(ConfigError, match=r"^n: expected an integer >= 0 and <= 2147483647, got -1$"):
        check_int("n", -1, low=0, high=2**31 - 1)  # integer bounds print in full
    assert check_optional(check_int, "n", None, low=1) is None and check_optional(check_int, "n", 3, low=1) == 3
    with pytest.raises(ConfigError, match=r"^n: expected None or an integer >= 1, got 'x'$"):
        check_optional(check_int, "n", "x", low=1)
    assert check_choice("kind", "a", ("a", "b")) == "a"
    with pytest.raises(ConfigError, match=r"^flag: expected one of \(0, 1\), got False$"):
        check_choice("flag", False, (0, 1))  # False == 0, but it is no such choice

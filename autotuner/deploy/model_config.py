"""Model shapes: one frozen dataclass per model, with the numbers from the models' config.json.

The engine covers the Llama family as Hugging Face implements it (``LlamaForCausalLM``,
``Qwen2ForCausalLM``, ``GraniteForCausalLM``): pre-norm decoder layers, grouped-query
attention with rotary embeddings, a SwiGLU MLP. What differs between them is data here:
Qwen's q/k/v biases, Llama 3's rotary frequency scaling, Granite's four multipliers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from autotuner.errors import ConfigError


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3's frequency-dependent rescaling of the rotary frequencies ("rope_type": "llama3")."""

    factor: float = 32.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclass(frozen=True)
class ModelConfig:
    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    head_dim: int = 0  # 0: hidden_size // num_heads
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    rms_norm_eps: float = 1e-5
    qkv_bias: bool = False
    tie_embeddings: bool = False
    max_position_embeddings: int = 8192
    # Granite's multipliers (1.0 / None where a model has none):
    embedding_multiplier: float = 1.0  # x = embed(tokens) * m
    residual_multiplier: float = 1.0  # x = x + sublayer(x) * m
    attention_multiplier: float | None = None  # softmax scale; None: 1 / sqrt(head_dim)
    logits_scaling: float = 1.0  # logits = lm_head(x) / s
    hf_id: str = ""  # where the real weights live on the Hub (for the user; never fetched)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"{self.name}: {self.num_heads} heads do not split over {self.num_kv_heads} KV heads")
        if self.head_dim % 2:
            raise ConfigError(f"{self.name}: rotary embeddings need an even head_dim, got {self.head_dim}")

    @property
    def attention_scale(self) -> float:
        return self.attention_multiplier if self.attention_multiplier is not None else self.head_dim**-0.5

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


LLAMA_3_2_1B = ModelConfig(
    name="llama-3.2-1b", vocab_size=128256, hidden_size=2048, num_layers=16, num_heads=32, num_kv_heads=8,
    intermediate_size=8192, head_dim=64, rope_theta=500000.0, rope_scaling=RopeScaling(), rms_norm_eps=1e-5,
    tie_embeddings=True, max_position_embeddings=131072, hf_id="meta-llama/Llama-3.2-1B",
)
QWEN_2_5_1_5B = ModelConfig(
    name="qwen2.5-1.5b", vocab_size=151936, hidden_size=1536, num_layers=28, num_heads=12, num_kv_heads=2,
    intermediate_size=8960, head_dim=128, rope_theta=1000000.0, rms_norm_eps=1e-6, qkv_bias=True,
    tie_embeddings=True, max_position_embeddings=131072, hf_id="Qwen/Qwen2.5-1.5B",
)
# ibm-granite/granite-3.2-2b-instruct config.json: rope_theta is 5e6 there (not 1e4).
GRANITE_3_2_2B = ModelConfig(
    name="granite-3.2-2b", vocab_size=49155, hidden_size=2048, num_layers=40, num_heads=32, num_kv_heads=8,
    intermediate_size=8192, head_dim=64, rope_theta=5000000.0, rms_norm_eps=1e-5, tie_embeddings=True,
    max_position_embeddings=131072, embedding_multiplier=12.0, residual_multiplier=0.22,
    attention_multiplier=0.015625, logits_scaling=8.0, hf_id="ibm-granite/granite-3.2-2b-instruct",
)

MODELS: dict[str, ModelConfig] = {c.name: c for c in (LLAMA_3_2_1B, QWEN_2_5_1_5B, GRANITE_3_2_2B)}


def get_config(name: str) -> ModelConfig:
    """A model's configuration by name (case-insensitive); lists the known names on a miss."""
    config = MODELS.get(name.lower())
    if config is None:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return config


def tiny_config(base: ModelConfig = LLAMA_3_2_1B, **changes: Any) -> ModelConfig:
    """A few-megabyte model with ``base``'s features (for CPU tests and quick checks)."""
    shape = dict(name=f"{base.name}-tiny", vocab_size=256, hidden_size=64, num_layers=2, num_heads=4,
                 num_kv_heads=2, intermediate_size=128, head_dim=16, max_position_embeddings=512)
    shape.update(changes)
    return base.replace(**shape)


def from_hf_config(data: dict[str, Any], name: str = "checkpoint") -> ModelConfig:
    """A ``ModelConfig`` from a Hugging Face ``config.json`` (Llama, Qwen2, Granite)."""
    kind = data.get("model_type", "llama")
    if kind not in ("llama", "qwen2", "granite"):
        raise ConfigError(f"{name}: model_type {kind!r} is not a Llama-family model this engine runs "
                          "(llama, qwen2, granite)")
    params = data.get("rope_parameters") or {}  # transformers 5 keeps theta and scaling here
    scaling = data.get("rope_scaling") or (params if params.get("rope_type", "default") != "default" else None)
    rope_scaling = None
    if scaling and scaling.get("rope_type", scaling.get("type")) == "llama3":
        rope_scaling = RopeScaling(float(scaling["factor"]), float(scaling["low_freq_factor"]),
                                   float(scaling["high_freq_factor"]),
                                   int(scaling["original_max_position_embeddings"]))
    elif scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default"):
        raise ConfigError(f"{name}: rope scaling {scaling!r} is not supported (only llama3)")
    theta = data.get("rope_theta", params.get("rope_theta", 10000.0))
    heads = int(data["num_attention_heads"])
    return ModelConfig(
        name=name, vocab_size=int(data["vocab_size"]), hidden_size=int(data["hidden_size"]),
        num_layers=int(data["num_hidden_layers"]), num_heads=heads,
        num_kv_heads=int(data.get("num_key_value_heads") or heads), intermediate_size=int(data["intermediate_size"]),
        head_dim=int(data.get("head_dim") or data["hidden_size"] // heads), rope_theta=float(theta),
        rope_scaling=rope_scaling, rms_norm_eps=float(data.get("rms_norm_eps", 1e-6)),
        qkv_bias=bool(data.get("attention_bias", kind == "qwen2")),
        tie_embeddings=bool(data.get("tie_word_embeddings", False)),
        max_position_embeddings=int(data.get("max_position_embeddings", 8192)),
        embedding_multiplier=float(data.get("embedding_multiplier", 1.0)),
        residual_multiplier=float(data.get("residual_multiplier", 1.0)),
        attention_multiplier=data.get("attention_multiplier"),
        logits_scaling=float(data.get("logits_scaling", 1.0)),
    )

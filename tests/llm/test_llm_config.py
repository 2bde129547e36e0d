"""LLM config: layers, unknown keys, model specs, and the key only from the environment."""

from __future__ import annotations

import pytest

from autotuner.errors import ConfigError, LLMUnavailableError
from evolution.llm.llm_config import (
    LOCAL_PLACEHOLDER_KEY,
    VALID_KEYS,
    LLMConfig,
    ModelChoice,
    llm_config_from,
    resolve_api_key,
)


def test_defaults_from_nothing():
    config = llm_config_from({}, {})
    assert config == LLMConfig()
    assert config.base_url == "https://api.openai.com/v1" and config.api_key_env == "OPENAI_API_KEY"


def test_file_values_and_models_tables():
    config = llm_config_from({
        "base_url": "http://gpu-box:8000/v1",
        "models": [{"name": "big", "weight": 1, "price_in_per_mtok": 3, "price_out_per_mtok": 15}, "small:3"],
        "temperature": 0.2, "max_tokens": 4096, "timeout_s": 60, "max_retries": 5, "concurrency": 8,
        "cache": False, "cache_dir": "/tmp/x", "api_key_env": "MY_KEY",
    }, {})  # fmt: skip
    assert config.models == (ModelChoice("big", 1.0, 3.0, 15.0), ModelChoice("small", 3.0))
    assert (config.temperature, config.max_tokens, config.concurrency, config.cache) == (0.2, 4096, 8, False)
    assert config.model("big").cost_usd(1_000_000, 1_000_000) == 18.0


def test_environment_overrides_the_file_and_keeps_known_prices():
    env = {"AUTOTUNER_LLM_BASE_URL": "http://localhost:11434/v1", "AUTOTUNER_LLM_MODEL": "big:1,qwen2.5-coder:32b"}
    config = llm_config_from({"base_url": "https://api.example.com/v1",
                              "models": [{"name": "big", "price_in_per_mtok": 3}]}, env)  # fmt: skip
    assert config.base_url == "http://localhost:11434/v1"
    assert config.models == (ModelChoice("big", 1.0, 3.0, 0.0), ModelChoice("qwen2.5-coder:32b", 1.0))


def test_model_shorthand_with_weights():
    config = llm_config_from({"model": "a:2, b:0.5, c"}, {})
    assert [(m.name, m.weight) for m in config.models] == [("a", 2.0), ("b", 0.5), ("c", 1.0)]


def test_unknown_keys_are_rejected_listing_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        llm_config_from({"base_ulr": "x", "temprature": 1}, {})
    assert "base_ulr" in str(info.value) and all(k in str(info.value) for k in VALID_KEYS)


def test_a_key_in_the_file_is_refused():
    with pytest.raises(ConfigError, match="environment"):
        llm_config_from({"api_key": "sk-oops"}, {})


@pytest.mark.parametrize(
    "mapping",
    [
        {"temperature": -1}, {"max_tokens": 0}, {"max_tokens": 1.5}, {"concurrency": "many"},
        {"cache": "yes"}, {"base_url": "localhost:8000"}, {"models": [{"name": "a", "weight": 0}]},
        {"models": [{"name": "a", "colour": "red"}]}, {"model": "a", "models": ["b"]}, {"model": "a,a"},
    ],
)  # fmt: skip
def test_bad_values_are_config_errors(mapping):
    with pytest.raises(ConfigError):
        llm_config_from(mapping, {})


def test_key_resolution_order_and_placeholder_for_local_servers():
    remote = LLMConfig(base_url="https://api.openai.com/v1")
    assert resolve_api_key(remote, {"OPENAI_API_KEY": "a", "AUTOTUNER_LLM_API_KEY": "b"}) == "b"
    assert resolve_api_key(remote, {"OPENAI_API_KEY": "a"}) == "a"
    named = LLMConfig(base_url="https://api.openai.com/v1", api_key_env="MY_KEY")
    assert resolve_api_key(named, {"MY_KEY": "c", "OPENAI_API_KEY": "a"}) == "c"
    for url in ("http://localhost:8080/v1", "http://127.0.0.1:11434/v1", "http://[::1]:8000/v1"):
        assert resolve_api_key(LLMConfig(base_url=url), {}) == LOCAL_PLACEHOLDER_KEY


def test_remote_endpoint_without_key_says_what_to_set():
    with pytest.raises(LLMUnavailableError) as info:
        resolve_api_key(LLMConfig(base_url="https://api.openai.com/v1"), {})
    assert "AUTOTUNER_LLM_API_KEY" in str(info.value) and "OPENAI_API_KEY" in str(info.value)

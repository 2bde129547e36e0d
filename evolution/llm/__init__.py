"""The LLM side: config, the OpenAI-compatible client, response cache, parsing, prompts.

The proposer that uses all of it is ``evolution.proposers.llm.LLMProposer``.
"""

from evolution.llm.cache import ResponseCache, cache_key, open_cache
from evolution.llm.llm_config import LLMConfig, ModelChoice, llm_config_from, resolve_api_key
from evolution.llm.parse import extract_candidate, params_of


def __getattr__(name: str):  # the openai SDK loads only when a client is wanted (rules-only runs need none)
    if name == "LLMClient":
        from evolution.llm.client import LLMClient

        return LLMClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "LLMClient",
    "LLMConfig",
    "ModelChoice",
    "ResponseCache",
    "cache_key",
    "extract_candidate",
    "llm_config_from",
    "open_cache",
    "params_of",
    "resolve_api_key",
]

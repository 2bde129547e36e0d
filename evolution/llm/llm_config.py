"""LLM configuration: one frozen dataclass, built by one function, secrets only from the env.

Layers, lowest first: the defaults below < the ``[llm]`` table of a config file (the mapping
given to ``llm_config_from``) < the environment:

``AUTOTUNER_LLM_BASE_URL``  the OpenAI-compatible endpoint, e.g. ``http://localhost:8000/v1``
``AUTOTUNER_LLM_MODEL``     ``"name"`` or ``"name:weight,name2:weight2"``
``AUTOTUNER_LLM_API_KEY``   the key; else the variable named by ``api_key_env``
                            (default ``OPENAI_API_KEY``)

The key itself is never stored in the config, in logs, in cache keys or in the archive:
``resolve_api_key`` reads it from the environment when the client is built.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from autotuner.errors import ConfigError, LLMUnavailableError
from autotuner.validation import STRICT, validate

ENV_BASE_URL = "AUTOTUNER_LLM_BASE_URL"
ENV_MODEL = "AUTOTUNER_LLM_MODEL"
ENV_API_KEY = "AUTOTUNER_LLM_API_KEY"
LOCAL_PLACEHOLDER_KEY = "not-needed"  # local servers (vLLM, llama.cpp, Ollama) ignore the key


@dataclass(frozen=True)
class ModelChoice:
    """One model the proposer may ask, how often (relative weight), and its price in USD."""

    name: str
    weight: float = 1.0
    price_in_per_mtok: float = 0.0  # USD per million prompt tokens
    price_out_per_mtok: float = 0.0  # USD per million completion tokens

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"llm model name must be a non-empty string, got {self.name!r}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ConfigError(f"llm model {self.name!r}: weight must be > 0, got {self.weight}")
        for label in ("price_in_per_mtok", "price_out_per_mtok"):
            price = getattr(self, label)
            if not (math.isfinite(price) and price >= 0):
                raise ConfigError(f"llm model {self.name!r}: {label} must be >= 0, got {price}")

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.price_in_per_mtok + tokens_out * self.price_out_per_mtok) / 1e6


@dataclass(frozen=True)
class LLMConfig:
    base_url: str = "https://api.openai.com/v1"
    models: tuple[ModelChoice, ...] = ()
    temperature: float = 0.7
    max_tokens: int = 8192  # completion tokens per call
    timeout_s: float = 300.0  # per HTTP attempt; the SDK retries timeouts
    max_retries: int = 3  # the SDK's own retries (429, 5xx, timeouts, with backoff); no others
    concurrency: int = 4  # requests in flight at once
    cache: bool = True  # keep responses on disk (replayed on an identical request)
    cache_dir: str | None = None  # None: $AUTOTUNER_CACHE_DIR/llm or ~/.cache/evolution/llm
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ConfigError(f"llm base_url must be an http(s) URL, got {self.base_url!r}")
        checks = [
            ("temperature", self.temperature >= 0),
            ("max_tokens", self.max_tokens >= 1),
            ("timeout_s", self.timeout_s > 0),
            ("max_retries", self.max_retries >= 0),
            ("concurrency", self.concurrency >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"llm {name} is out of range: {getattr(self, name)!r}")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ConfigError(f"llm models repeat a name: {names}")

    def model(self, name: str) -> ModelChoice | None:
        return next((m for m in self.models if m.name == name), None)

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        root = os.environ.get("AUTOTUNER_CACHE_DIR") or str(Path.home() / ".cache" / "autotuner")
        return Path(root).expanduser() / "llm"


class ModelTable(BaseModel):
    """One entry of ``models = [{ name = ..., weight = ..., ... }]``."""

    model_config = STRICT
    name: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)
    price_in_per_mtok: float = Field(0.0, ge=0, allow_inf_nan=False)
    price_out_per_mtok: float = Field(0.0, ge=0, allow_inf_nan=False)


class LLMTable(BaseModel):
    """The ``[llm]`` table as written in a config file: types, ranges, unknown keys refused."""

    model_config = STRICT
    base_url: str | None = None
    model: str | None = None  # "name" or "name:weight,name2:weight2"
    models: str | list[str | ModelTable] | None = None
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    max_retries: int | None = Field(None, ge=0)
    concurrency: int | None = Field(None, ge=1)
    cache: bool | None = None
    cache_dir: str | None = None
    api_key_env: str | None = None


VALID_KEYS = tuple(sorted(LLMTable.model_fields))


class _LLMFile(BaseModel):
    """Wraps the table so that errors name their key as ``llm.key``."""

    model_config = STRICT
    llm: LLMTable


def check_table(mapping: Mapping[str, Any], where: str = "llm config") -> LLMTable:
    """The ``[llm]`` table checked (whatever the proposer); ``ConfigError`` names the key and value."""
    if "api_key" in mapping:
        raise ConfigError(
            f"{where}: llm.api_key may not be written in a config file: put the key in the environment "
            f"({ENV_API_KEY} or OPENAI_API_KEY), or name its variable with api_key_env"
        )
    table = validate(_LLMFile, {"llm": dict(mapping)}, where).llm
    if table.model is not None and table.models is not None:
        raise ConfigError(f"{where}: llm sets both model and models; use one")
    return table


def llm_config_from(mapping: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> LLMConfig:
    """The config from a ``[llm]`` table (``mapping``) under the environment (``env``).

    ``model = "a:2,b:1"`` is a shorthand for ``models``; ``models`` may be a list of such
    strings or of tables with keys ``name, weight, price_in_per_mtok, price_out_per_mtok``.
    Unknown keys raise ``ConfigError`` listing the valid ones; so does a key in the file.
    """
    env = os.environ if env is None else env
    table = check_table(dict(mapping or {}))
    values: dict[str, Any] = {k: v for k, v in table.model_dump(exclude={"model", "models"}).items() if v is not None}
    file_models = _models(table.models if table.models is not None else table.model)
    if file_models:
        values["models"] = file_models

    if env.get(ENV_BASE_URL):
        values["base_url"] = env[ENV_BASE_URL].strip()
    if env.get(ENV_MODEL):
        priced = {m.name: m for m in file_models}
        values["models"] = tuple(
            ModelChoice(m.name, m.weight, priced[m.name].price_in_per_mtok, priced[m.name].price_out_per_mtok)
            if m.name in priced else m
            for m in _models(env[ENV_MODEL])
        )
    return LLMConfig(**values)


def _models(spec: Any) -> tuple[ModelChoice, ...]:
    """``"a"``, ``"a:2,b:1"``, or a list of such strings / of checked tables -> ModelChoice tuple."""
    if spec is None or spec == "" or spec == []:
        return ()
    if isinstance(spec, str):
        spec = [part for part in spec.split(",") if part.strip()]
    out = []
    for entry in spec:
        if isinstance(entry, ModelTable):
            out.append(ModelChoice(**entry.model_dump()))
        else:
            name, sep, weight = entry.strip().rpartition(":")
            if not sep or not _is_number(weight):  # "name" alone, or a name that holds a colon
                name, weight = entry.strip(), "1"
            out.append(ModelChoice(name.strip(), float(weight)))
    return tuple(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_loopback(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(config: LLMConfig, env: Mapping[str, str] | None = None) -> str:
    """The key from the environment: ``AUTOTUNER_LLM_API_KEY``, else ``config.api_key_env``.

    A loopback endpoint (a local vLLM, llama.cpp or Ollama server) needs no key and gets a
    placeholder; any other endpoint without a key raises ``LLMUnavailableError`` naming what
    to set. The key is returned to the caller only, never logged or stored.
    """
    env = os.environ if env is None else env
    for name in (ENV_API_KEY, config.api_key_env):
        value = env.get(name, "").strip()
        if value:
            return value
    if is_loopback(config.base_url):
        return LOCAL_PLACEHOLDER_KEY
    names = " or ".join(dict.fromkeys((ENV_API_KEY, config.api_key_env)))
    raise LLMUnavailableError(
        f"no API key for {config.base_url}: set {names} in the environment "
        "(any non-empty value for a server that needs no key)"
    )

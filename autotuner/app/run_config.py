"""Run configuration: a few frozen dataclasses, loaded by one function.

Layers, later wins: defaults < TOML file (``--config`` or ``./autotuner.toml``) < environment
(``AUTOTUNER_*``) < command line. Unknown keys are rejected with the valid ones listed.
Secrets (API keys) only ever come from the environment. Every layer is checked by pydantic
models (``FileConfig``) when it loads: a wrong type, a value out of range or an unknown key in
any table is one ``ConfigError`` naming the file, ``table.key``, the value and what was expected.

    [search]  proposer, tune_trials, tune_batch, tune_top, patience, generations, islands, migrate_every, seed
    [eval]    trials, timing_calls, timeout_s, ... (autotuner.evaluator.EvalConfig)
    [budget]  max_candidates, max_minutes, max_tokens, max_cost_usd, start_within_minutes
    [llm]     base_url, model, ... (evolution.llm.llm_config)
    [cluster] address, resource, workers, lease_s, ... (evolution.cluster.ClusterConfig)
    db_url, gpus, report_dir  (top level)
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, Field

from autotuner.errors import ConfigError
from autotuner.evaluator.eval_config import EvalConfig
from evolution.llm.llm_config import LLMTable, check_table
from autotuner.validation import STRICT, section_model, validate
from evolution.cluster.cluster_config import ADDRESS_PATTERN, ClusterConfig
from evolution.loop import SearchConfig

DB_ENV_VAR = "AUTOTUNER_DB_URL"  # the same variable archive.db reads

PROPOSERS = ("rules", "llm", "mixed")


@dataclass(frozen=True)
class BudgetConfig:
    max_candidates: int | None = None
    max_minutes: float | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    # not a cap: no task starts its search after this many minutes; the one searching then finishes
    start_within_minutes: float | None = None


@dataclass(frozen=True)
class RunConfig:
    search: SearchConfig = field(default_factory=SearchConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    llm: dict[str, Any] = field(default_factory=dict)  # validated by evolution.llm.llm_config
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    db_url: str | None = None
    gpus: tuple[int, ...] = (0,)
    report_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["gpus"] = list(self.gpus)
        return data


_SECTIONS = {"search": SearchConfig, "eval": EvalConfig, "budget": BudgetConfig, "cluster": ClusterConfig}
_RANGES: dict[str, dict[str, dict[str, Any]]] = {
    "search": {"tune_trials": {"ge": 0}, "tune_batch": {"ge": 1}, "tune_top": {"ge": 0}, "patience": {"ge": 1},
               "generations": {"ge": 0},
               "islands": {"ge": 1}, "migrate_every": {"ge": 1}, "max_variants": {"ge": 1}},
    "eval": {"trials": {"ge": 1}, "timing_calls": {"ge": 1}, "warmup_calls": {"ge": 0}, "timeout_s": {"gt": 0},
             "baseline_timeout_s": {"gt": 0}, "gpu": {"ge": 0}, "roofline_slack": {"ge": 0}, "pool_bytes": {"gt": 0},
             "timed_checks": {"gt": 0, "le": 1}, "timed_checks_min": {"ge": 1}},
    "budget": {"max_candidates": {"ge": 0}, "max_minutes": {"gt": 0}, "max_tokens": {"ge": 0},
               "max_cost_usd": {"ge": 0}, "start_within_minutes": {"gt": 0}},
    "cluster": {"resource": {"min_length": 1}, "workers": {"ge": 1},
                "lease_s": {"gt": 0}, "start_timeout_s": {"gt": 0}, "worker_wait_s": {"ge": 0},
                "max_attempts": {"ge": 1}},
}  # fmt: skip


def _cluster_address(value: str | None) -> str | None:
    if value is not None and not re.match(ADDRESS_PATTERN, value):
        raise ValueError("'auto', 'ray://HOST:PORT' or 'HOST:PORT' (a Ray cluster's address)")
    return value


_TYPES: dict[str, dict[str, Any]] = {
    "search": {"proposer": Literal["rules", "llm", "mixed"]},
    "cluster": {"address": Annotated[str | None, AfterValidator(_cluster_address)]},
}
_TABLES = {
    name: section_model(cls, constraints=_RANGES[name], types=_TYPES.get(name))
    for name, cls in _SECTIONS.items()
}  # fmt: skip
GpuIndex = Annotated[int, Field(ge=0)]


class FileConfig(BaseModel):
    """A whole layer as written in ``autotuner.toml``: every table strict, unknown keys refused."""

    model_config = STRICT
    search: _TABLES["search"] | None = None  # type: ignore[valid-type]
    eval: _TABLES["eval"] | None = None  # type: ignore[valid-type]
    budget: _TABLES["budget"] | None = None  # type: ignore[valid-type]
    cluster: _TABLES["cluster"] | None = None  # type: ignore[valid-type]
    llm: LLMTable | None = None
    db_url: str | None = Field(None, min_length=1)
    gpus: list[GpuIndex] | None = Field(None, min_length=1)
    report_dir: str | None = Field(None, min_length=1)


def merge(config: RunConfig, data: Mapping[str, Any], where: str) -> RunConfig:
    """Apply one layer (a parsed TOML table, or overrides shaped the same way); checked first."""
    data = dict(data)
    if "llm" in data and isinstance(data["llm"], Mapping):
        check_table(data["llm"], where)  # the api_key refusal and model/models, before the types
    layer = validate(FileConfig, data, where)
    given = layer.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    for name in _SECTIONS:
        if given.get(name):
            try:
                changes[name] = replace(getattr(config, name), **given[name])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}: [{name}] {exc}") from None
    if "llm" in data:
        changes["llm"] = {**config.llm, **dict(data["llm"] or {})}
    for key in ("db_url", "report_dir"):
        if given.get(key) is not None:
            changes[key] = given[key]
    if given.get("gpus") is not None:
        changes["gpus"] = tuple(given["gpus"])
    return replace(config, **changes)


def parse_gpus(value: Any) -> tuple[int, ...]:
    """``"0,1"`` (the command line, ``AUTOTUNER_GPUS``) or a list -> device indices."""
    try:
        if isinstance(value, str):
            indices = tuple(int(v) for v in value.split(",") if v.strip())
        else:
            indices = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"gpus must be device indices like 0,1; got {value!r}") from None
    if not indices or min(indices) < 0:
        raise ConfigError(f"gpus must be device indices like 0,1; got {value!r}")
    return indices


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if env.get(DB_ENV_VAR):
        layer["db_url"] = env[DB_ENV_VAR]
    if env.get("AUTOTUNER_GPUS"):
        layer["gpus"] = list(parse_gpus(env["AUTOTUNER_GPUS"]))
    if env.get("AUTOTUNER_PROPOSER"):
        layer["search"] = {"proposer": env["AUTOTUNER_PROPOSER"]}
    if env.get("AUTOTUNER_CLUSTER"):
        layer["cluster"] = {"address": env["AUTOTUNER_CLUSTER"]}
    return layer


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Defaults < file < environment < ``overrides`` (the command line)."""
    env = os.environ if env is None else env
    config = RunConfig()
    file = Path(path) if path else (Path("autotuner.toml") if Path("autotuner.toml").is_file() else None)
    if file is not None:
        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        config = merge(config, data, str(file))
    config = merge(config, _env_layer(env), "environment")
    if overrides:
        overrides = dict(overrides)
        if isinstance(overrides.get("gpus"), str):
            overrides["gpus"] = list(parse_gpus(overrides["gpus"]))
        config = merge(config, overrides, "command line")
    return config

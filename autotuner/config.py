"""Run configuration: a few frozen dataclasses, loaded by one function.

Layers, later wins: defaults < TOML file (``--config`` or ``./autotuner.toml``) < environment
(``AUTOTUNER_*``) < command line. Unknown keys are rejected with the valid ones listed.
Secrets (API keys) only ever come from the environment.

    [search]  proposer, tune_trials, tune_batch, tune_top, generations, islands, migrate_every, seed
    [eval]    trials, timing_calls, timeout_s, ... (autotuner.evaluator.EvalConfig)
    [budget]  max_candidates, max_minutes, max_tokens, max_cost_usd
    [llm]     base_url, model, ... (autotuner.llm.config)
    db_url, gpus, report_dir  (top level)
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from autotuner.errors import ConfigError
from autotuner.evaluator.config import EvalConfig
from evolution.loop import SearchConfig

PROPOSERS = ("rules", "llm", "mixed")


@dataclass(frozen=True)
class BudgetConfig:
    max_candidates: int | None = None
    max_minutes: float | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None


@dataclass(frozen=True)
class RunConfig:
    search: SearchConfig = field(default_factory=SearchConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    llm: dict[str, Any] = field(default_factory=dict)  # validated by autotuner.llm.config
    db_url: str | None = None
    gpus: tuple[int, ...] = (0,)
    report_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["gpus"] = list(self.gpus)
        return data


_SECTIONS = {"search": SearchConfig, "eval": EvalConfig, "budget": BudgetConfig}
_TOP = {"db_url", "gpus", "report_dir", "llm"}


def _section(cls: type, current: Any, values: Mapping[str, Any], where: str) -> Any:
    valid = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    try:
        return replace(current, **values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def merge(config: RunConfig, data: Mapping[str, Any], where: str) -> RunConfig:
    """Apply one layer (a parsed TOML table, or overrides shaped the same way)."""
    unknown = sorted(set(data) - set(_SECTIONS) - _TOP)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid: {sorted(set(_SECTIONS) | _TOP)}")
    for name, cls in _SECTIONS.items():
        if name in data:
            if not isinstance(data[name], Mapping):
                raise ConfigError(f"{where}: [{name}] must be a table")
            config = replace(config, **{name: _section(cls, getattr(config, name), data[name], f"{where} [{name}]")})
    if "llm" in data:
        config = replace(config, llm={**config.llm, **dict(data["llm"])})
    if "db_url" in data:
        config = replace(config, db_url=str(data["db_url"]))
    if "gpus" in data:
        config = replace(config, gpus=parse_gpus(data["gpus"]))
    if "report_dir" in data:
        config = replace(config, report_dir=str(data["report_dir"]))
    if config.search.proposer not in PROPOSERS:
        raise ConfigError(f"{where}: proposer {config.search.proposer!r}; expected one of {list(PROPOSERS)}")
    return config


def parse_gpus(value: Any) -> tuple[int, ...]:
    try:
        if isinstance(value, str):
            return tuple(int(v) for v in value.split(",") if v.strip())
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"gpus must be a list of indices like 0,1 — got {value!r}") from None


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if env.get("AUTOTUNER_GPUS"):
        layer["gpus"] = env["AUTOTUNER_GPUS"]
    if env.get("AUTOTUNER_PROPOSER"):
        layer["search"] = {"proposer": env["AUTOTUNER_PROPOSER"]}
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
        config = merge(config, overrides, "command line")
    return config

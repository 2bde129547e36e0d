"""autotuner.toml is checked when it loads: one error naming the file, table.key, value and type."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.app.run_config import load_config
from autotuner.errors import ConfigError


def _load(tmp_path: Path, text: str, **kwargs):  # noqa: ANN202
    path = tmp_path / "autotuner.toml"
    path.write_text(text)
    return load_config(path, env=kwargs.pop("env", {}), **kwargs)


@pytest.mark.parametrize(
    ("text", "key", "value", "expected"),
    [
        ('[search]\ntune_trials = "eight"', "search.tune_trials", '"eight"', "an integer"),
        ("[search]\nislands = -3", "search.islands", "-3", ">= 1"),
        ('[search]\nproposer = "gpt"', "search.proposer", '"gpt"', "'rules', 'llm' or 'mixed'"),
        ('[eval]\ntimeout_s = "soon"', "eval.timeout_s", '"soon"', "a number"),
        ("[eval]\nstatic_check = 1", "eval.static_check", "1", "true or false"),
        ("[eval]\ntrials = 2.5", "eval.trials", "2.5", "an integer"),
        ('[budget]\nmax_minutes = "an hour"', "budget.max_minutes", '"an hour"', "a number"),
        ("[budget]\nmax_candidates = true", "budget.max_candidates", "true", "an integer"),
        ("gpus = [1.7]", "gpus[0]", "1.7", "an integer"),
        ('gpus = "0,1"', "gpus", '"0,1"', "a list"),
        ("db_url = 5", "db_url", "5", "a string"),
        ('[llm]\ntemperature = "hot"', "llm.temperature", '"hot"', "a number"),
        ("[llm]\nmax_tokens = 1.5", "llm.max_tokens", "1.5", "an integer"),
        ("[llm]\nmodels = [{ name = \"a\", weight = 0 }]", "llm.models[0].weight", "0", "> 0"),
        ('[cluster]\naddress = "the head node"', "cluster.address", '"the head node"', "'ray://HOST:PORT'"),
        ("[cluster]\nworkers = 0", "cluster.workers", "0", ">= 1"),
        ('[cluster]\nlease_s = "long"', "cluster.lease_s", '"long"', "a number"),
    ],
)  # fmt: skip
def test_a_wrong_type_in_any_table_is_one_line_naming_file_key_value_and_type(tmp_path, text, key, value, expected):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'autotuner.toml'}: {key} = {value}: expected ")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "key", "a_valid_key"),
    [
        ("[search]\nproposr = 1", "search.proposr", "proposer"),
        ("[eval]\ntrails = 5", "eval.trails", "trials"),
        ("[budget]\nmax_dollars = 5", "budget.max_dollars", "max_cost_usd"),
        ("[llm]\nbase_ulr = 'x'", "llm.base_ulr", "base_url"),
        ("colour = 'red'", "colour", "db_url"),
        ("[cluster]\nadress = 'auto'", "cluster.adress", "address"),
    ],
)
@pytest.mark.parametrize("proposer", ["rules", "llm"])
def test_unknown_keys_in_every_table_are_refused_whatever_the_proposer(tmp_path, text, key, a_valid_key, proposer):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, overrides={"search": {"proposer": proposer}})
    assert f"unknown key {key}" in str(info.value) and a_valid_key in str(info.value)


def test_an_api_key_in_the_file_is_refused_at_load(tmp_path):
    with pytest.raises(ConfigError, match="environment"):
        _load(tmp_path, "[llm]\napi_key = 'sk-oops'")


def test_layers_defaults_file_environment_command_line(tmp_path):
    text = 'db_url = "/f/archive.db"\ngpus = [0, 1]\n[search]\ntune_trials = 3\nislands = 5\n[llm]\nmodel = "a"'
    config = _load(tmp_path, text, env={"AUTOTUNER_GPUS": "2", "AUTOTUNER_DB_URL": "/e/archive.db"},
                   overrides={"search": {"islands": 7}})
    assert (config.search.tune_trials, config.search.islands, config.gpus) == (3, 7, (2,))
    assert config.db_url == "/e/archive.db" and config.llm == {"model": "a"}
    assert config.search.generations is None and config.search.patience == 5  # untouched defaults
    assert _load(tmp_path, text, overrides={"db_url": "/c/archive.db"}).db_url == "/c/archive.db"
    assert _load(tmp_path, text, overrides={"gpus": "3,4"}).gpus == (3, 4)


def test_a_bad_environment_value_names_the_layer(tmp_path):
    with pytest.raises(ConfigError, match="environment: search.proposer"):
        _load(tmp_path, "", env={"AUTOTUNER_PROPOSER": "gpt"})
    with pytest.raises(ConfigError, match="AUTOTUNER_GPUS|gpus"):
        _load(tmp_path, "", env={"AUTOTUNER_GPUS": "zero"})


def test_a_stored_run_config_loads_back(tmp_path):
    from autotuner.app.run_config import RunConfig, merge

    stored = _load(tmp_path, '[budget]\nmax_candidates = 4\n[llm]\nmodel = "a"').to_json()
    assert merge(RunConfig(), stored, "run 1") == _load(tmp_path, '[budget]\nmax_candidates = 4\n[llm]\nmodel = "a"')


def test_the_cluster_table_and_its_environment_variable(tmp_path):
    config = _load(tmp_path, '[cluster]\naddress = "ray://head:10001"\nresource = "fake_gpu"\nworkers = 4')
    assert (config.cluster.address, config.cluster.resource, config.cluster.workers) == ("ray://head:10001", "fake_gpu", 4)
    assert config.cluster.enabled and not load_config(None, env={}).cluster.enabled
    assert load_config(None, env={"AUTOTUNER_CLUSTER": "auto"}).cluster.address == "auto"
    assert _load(tmp_path, "", overrides={"cluster": {"address": "10.0.0.1:6379"}}).cluster.address == "10.0.0.1:6379"

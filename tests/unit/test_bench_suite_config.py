"""`autotuner bench suite` measures what a user of `autotuner tune` gets: optuna on by default."""

from __future__ import annotations

from autotuner.cli.bench_cmd import suite_config
from autotuner.cli.main import build_parser
from autotuner.app.run_config import RunConfig


def _config(*flags: str):  # noqa: ANN202
    args = build_parser().parse_args(["bench", "suite", *flags])
    return suite_config(args)


def test_tuning_is_on_by_default(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)  # no autotuner.toml here
    config = _config()
    assert config.search.tune_trials == RunConfig().search.tune_trials > 0
    assert config.search.proposer == "rules"


def test_tune_trials_zero_turns_tuning_off(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert _config("--tune-trials", "0").search.tune_trials == 0
    assert _config("--tune-trials", "3", "--variants", "2").search.max_variants == 2


def test_max_minutes_sets_the_run_budget(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert _config().budget.max_minutes is None
    assert _config("--max-minutes", "8.5").budget.max_minutes == 8.5


def test_start_within_sets_the_run_start_window_and_no_cap(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from autotuner.app.tuning_run import make_budget

    monkeypatch.chdir(tmp_path)
    assert _config().budget.start_within_minutes is None
    config = _config("--start-within", "7.5")
    assert config.budget.start_within_minutes == 7.5 and config.budget.max_minutes is None
    budget = make_budget(config)
    assert budget.start_within_s == 450.0 and budget.max_wall_s is None and budget.exhausted() is None


def test_a_start_window_in_the_config_file_is_checked(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import pytest

    from autotuner.app.run_config import load_config
    from autotuner.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "autotuner.toml").write_text("[budget]\nstart_within_minutes = 0\n")
    with pytest.raises(ConfigError, match="start_within_minutes"):
        load_config(None)
    (tmp_path / "autotuner.toml").write_text("[budget]\nstart_within_minutes = 12\n")
    assert load_config(None).budget.start_within_minutes == 12

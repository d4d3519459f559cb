"""orchestrator/storage/optuna_study.py and orchestrator/search/optuna_searcher.py against real Optuna.

Fast tier: which `search.optuna_storage` values are accepted (and the one-line refusal through
the CLI, before Ray is imported); a journal file and a sqlite URL really hold a study another
process can load (what optuna-dashboard does); StepOptunaSearch's intermediate values sit at
optimizer steps and a trial that ended without its closing report is PRUNED in the study.
The slow sweep that proves the scheduler's STOP reaches it is tests/orchestrator/test_time_axis.py.
"""

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from orchestrator.errors import UserError
from orchestrator.storage.optuna_study import check_storage, open_storage

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value, kind, target", [
    ("sqlite:///results/demo.db", "rdb", "sqlite:///results/demo.db"),
    ("postgresql+psycopg2://u@db:5432/optuna", "rdb", "postgresql+psycopg2://u@db:5432/optuna"),
    ("journal:results/demo.optuna", "journal", "results/demo.optuna"),
    ("results/demo.optuna.log", "journal", "results/demo.optuna.log"),
    ("/abs/study.journal", "journal", "/abs/study.journal"),
])
def test_accepted_storages(value, kind, target):
    spec = check_storage(value)
    assert (spec.kind, spec.target) == (kind, target)


def test_empty_storage_means_in_memory():
    assert check_storage("") is None and open_storage("") is None


@pytest.mark.parametrize("value, needle", [
    ("study.db", "got 'study.db'; allowed"),
    ("redis://localhost:6379", "unknown database 'redis'"),
    ("journal:", "the journal needs a file path"),
    ("journal:results/", "the journal needs a file path"),
    ("sqlite:///a\nb", "control characters"),
    (" sqlite:///a.db", "surrounding spaces"),
])
def test_refused_storages_name_the_value(value, needle):
    with pytest.raises(ValueError, match="^optuna_storage: ") as err:
        check_storage(value)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_bad_storage_is_one_line_exit_2_before_ray(tmp_path):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "s", "task": {"name": "modular", "op": "x+y", "p": 23},
        "search": {"space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}, "optuna_storage": "study.db"}}))
    probe = ("import sys; from orchestrator.cli.main import main; rc = main(sys.argv[1:]); "
             "print('RAY' if 'ray' in sys.modules else 'NORAY'); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", probe, "sweep", str(cfg), "--storage", str(tmp_path / "res")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "search.optuna_storage: got 'study.db'" in errors[0]
    assert proc.stdout.strip() == "NORAY" and not (tmp_path / "res").exists()


@pytest.mark.parametrize("form", ["journal:{dir}/sub/study.log", "{dir}/study.journal", "sqlite:///{dir}/study.db"])
def test_storages_hold_a_study_another_reader_can_load(tmp_path, form):
    value = form.format(dir=tmp_path)
    study = optuna.create_study(storage=open_storage(value), study_name="demo")
    trial = study.ask()
    trial.report(0.5, step=200)
    study.tell(trial, 1.0)
    # A second storage object on the same file/URL, as optuna-dashboard opens it.
    again = optuna.load_study(study_name="demo", storage=open_storage(value))
    assert [t.intermediate_values for t in again.trials] == [{200: 0.5}]


def test_an_unopenable_storage_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="^search.optuna_storage: cannot open"):
        open_storage(f"journal:{blocker}/study.log")  # its folder would have to be a file


# --- StepOptunaSearch ---------------------------------------------------------------------------

def searcher():
    from ray import tune

    from orchestrator.search.optuna_searcher import StepOptunaSearch

    search = StepOptunaSearch(sampler=optuna.samplers.TPESampler(seed=0), study_name="t")
    search.set_search_properties("grok_score", "min", {"optim.lr": tune.loguniform(1e-4, 1e-2)})
    return search


def result(step, score, iteration, **extra):
    return {"step": step, "grok_score": score, "training_iteration": iteration, **extra}


def test_intermediate_values_are_at_optimizer_steps_and_finished_trials_complete():
    s = searcher()
    assert s.suggest("a") is not None
    for i, step in enumerate((100, 200, 400), start=1):
        s.on_trial_result("a", result(step, 1000.0 - step, i))
    closing = result(400, 380.0, 4, status="grokked", steps_to_target=380)
    s.on_trial_result("a", closing)  # the closing report repeats step 400: not reported twice
    s.on_trial_complete("a", result=closing)
    (trial,) = s._ot_study.trials
    assert trial.state == TrialState.COMPLETE and trial.value == 380.0
    assert trial.intermediate_values == {100: 900.0, 200: 800.0, 400: 600.0}  # steps, not iterations 1..3


def test_a_trial_stopped_before_its_closing_report_is_pruned_at_its_last_step():
    s = searcher()
    for tid in ("stopped", "early", "errored", "removed", "diverged"):
        s.suggest(tid)
    s.on_trial_result("stopped", result(100, 1500.0, 1))
    # The scheduler's STOP hands on_trial_complete the result it stopped on, never on_trial_result.
    s.on_trial_complete("stopped", result=result(300, 1400.0, 3))
    s.on_trial_complete("early", result=result(500, 1300.0, 5, status="early_stopped"))
    s.on_trial_complete("errored", error=True)
    s.on_trial_complete("removed")  # removed while pending: never reported
    s.on_trial_complete("diverged", result=result(50, 3000.0, 1, status="diverged"))
    states = {t.number: t for t in s._ot_study.trials}
    stopped, early, errored, removed, diverged = (states[i] for i in range(5))
    assert stopped.state == TrialState.PRUNED and stopped.intermediate_values == {100: 1500.0, 300: 1400.0}
    assert stopped.value == 1400.0  # Optuna takes the last intermediate value: the score it was pruned with
    assert early.state == TrialState.PRUNED and early.intermediate_values == {500: 1300.0}
    assert errored.state == TrialState.FAIL
    assert removed.state == TrialState.PRUNED and removed.intermediate_values == {}
    assert diverged.state == TrialState.COMPLETE and diverged.value == 3000.0


def test_a_group_mean_from_rays_repeater_stays_complete():
    s = searcher()
    s.suggest("g")
    s.on_trial_complete("g", result={"grok_score": 700.0})  # Repeater: no step, no status
    (trial,) = s._ot_study.trials
    assert trial.state == TrialState.COMPLETE and trial.value == 700.0


def test_reported_steps_survive_the_searchers_snapshot(tmp_path):
    s = searcher()
    s.suggest("a")
    s.on_trial_result("a", result(200, 900.0, 1))
    s.save(str(tmp_path / "searcher.pkl"))
    restored = searcher()
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.on_trial_result("a", result(200, 800.0, 2))  # a retry repeating step 200: skipped
    restored.on_trial_result("a", result(300, 700.0, 3))
    assert restored._ot_study.trials[0].intermediate_values == {200: 900.0, 300: 700.0}
    assert json.dumps(restored._last_step) == '{"a": 300}'

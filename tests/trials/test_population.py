"""train_population against separate train() runs of the same configs (CPU, fixed seeds): the
one trainer (trials.train) for K members.

vectorize="loop" steps each member's own modules with the lone run's code and keeps each
member's own dropout stream, so every record is bitwise the separate run's, for every optimizer,
loss and method, and members that differ in any per-member scalar.

vectorize="vmap" (trials.stacked) cannot be bitwise: the members' matrix products run as batched kernels (bmm),
CPU attention uses the math backend and vmap decomposes LayerNorm's affine part, so a few
gradient entries differ in the last float32 bit from step 1 on. Adam divides by sqrt(v), which
turns a last-bit change of a near-zero gradient into a parameter change of ~1e-7 relative, and
such differences grow along the trajectory (measured: ~1e-5 relative on norms by step 60,
~1e-4 by step 100). Over these 40-60 step runs the losses agree to <1e-6 relative and the norms
to ~1e-5; the tolerances below (1e-5 losses, 1e-4 norms, accuracies exact) bound that.

A population resumed from its checkpoint continues bitwise as the uninterrupted run did, in both
modes (the same kernels run either way). The median record and the population's status
(trials.population_summary) are checked on hand-made records in test_population_summary.py.
"""

import json
import math

import pytest

from groktune.errors import SetupError
from groktune.events import EVENT_STEP
from orchestrator.config.experiment import config_from_dict
from tests.conftest import TINY, deep_merge
from trials.train import (PopulationResult, TrainResult, check_population, median_steps_to_target, train,
                          train_population)

LOSS_REL = 1e-5
NORM_REL = 1e-4
EXACT = ("step", "epoch", "lr", EVENT_STEP)  # the event: each member's own StopRule, as its lone run's


def configs(members: list[dict], **shared) -> list:
    base = deep_merge(TINY, shared)
    return [config_from_dict(deep_merge(base, m)) for m in members]


def separate(cfgs):
    out = []
    for cfg in cfgs:
        records = []
        result = train(cfg, lambda record, save=None: records.append(record))
        out.append((result, records))
    return out


def together(cfgs, vectorize="vmap"):
    records = []
    result = train_population(cfgs, lambda ev, save=None: records.extend(ev.records), vectorize=vectorize)
    return result, [[r for r in records if r["member"] == k] for k in range(len(cfgs))]


def assert_same_curve(expected: list[dict], got: list[dict]) -> None:
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for a, b in zip(expected, got):
        assert set(b) == set(a) | {"member"}
        for key, value in a.items():
            if key == "wall_time":
                continue
            if key in EXACT:
                assert b[key] == value, key
            elif key == "val_acc_per_class":
                assert b[key] == pytest.approx(value, abs=1e-6)
            elif key.endswith("_acc"):
                assert b[key] == pytest.approx(value, abs=1e-6), (key, a["step"])
            else:
                rel = LOSS_REL if key.endswith("_loss") else NORM_REL
                assert b[key] == pytest.approx(value, rel=rel, nan_ok=True), (key, a["step"])


def assert_identical_curve(expected: list[dict], got: list[dict]) -> None:
    strip = lambda r: {k: v for k, v in r.items() if k not in ("wall_time", "member")}  # noqa: E731
    assert [strip(r) for r in got] == [strip(r) for r in expected]


def assert_same_result(expected: TrainResult, got: TrainResult) -> None:
    assert (got.status, got.steps_to_target, got.final_step) == (
        expected.status, expected.steps_to_target, expected.final_step)


MEMBERS = [{"seed": 0, "optim": {"lr": 3e-3, "weight_decay": 0.1}},
           {"seed": 1, "optim": {"lr": 5e-3, "weight_decay": 1.0}},
           {"seed": 2, "optim": {"lr": 1e-3, "weight_decay": 0.0, "beta1": 0.8, "beta2": 0.95}}]


def test_three_members_match_three_separate_runs():
    cfgs = configs(MEMBERS)
    runs = separate(cfgs)
    result, curves = together(cfgs)
    assert isinstance(result, PopulationResult) and len(result.members) == 3
    for (sep_result, sep_records), got_result, got in zip(runs, result.members, curves):
        assert_same_curve(sep_records, got)
        assert_same_result(sep_result, got_result)
    assert curves[0][-1]["train_acc"] > curves[0][0]["train_acc"]  # it learns
    result, curves = together(cfgs, "loop")
    for (sep_result, sep_records), got_result, got in zip(runs, result.members, curves):
        assert_identical_curve(sep_records, got)
        assert_same_result(sep_result, got_result)


@pytest.mark.parametrize("optim,per_member", [
    ({"name": "adam", "grad_clip": 1.0, "grokfast": {"kind": "ema"}, "noise": {"eta": 0.01}},
     [{"grokfast": {"alpha": 0.9, "lamb": 2.0}}, {"grokfast": {"alpha": 0.98, "lamb": 0.5}, "noise": {"eta": 0.0}}]),
    ({"name": "adamw", "no_decay": ["bias", "norm", "embedding"], "grokfast": {"kind": "ma", "window": 5}},
     [{"grokfast": {"lamb": 1.0}}, {"grokfast": {"lamb": 3.0}, "weight_decay": 0.5}]),
    ({"name": "sgd", "lr": 0.1, "momentum": 0.9}, [{"momentum": 0.9}, {"momentum": 0.0, "lr": 0.3}]),
    # every other per-member scalar: eps, warmup, grad clip, noise gamma, label smoothing
    ({"name": "adamw", "grad_clip": 0.5, "noise": {"eta": 0.01}},
     [{"eps": 1e-6, "warmup_steps": 0, "label_smoothing": 0.1, "noise": {"gamma": 0.3}},
      {"eps": 1e-8, "warmup_steps": 20, "grad_clip": 0.0, "noise": {"eta": 0.02}}]),
])
def test_optimizer_and_filter_variants_match_separate_runs(optim, per_member):
    # Odd sizes: no parameter is a multiple of the SIMD width (vector-body/scalar-tail splits differ
    # between the flat rows and the separate run's per-parameter tensors).
    cfgs = configs([{"seed": i, "optim": m} for i, m in enumerate(per_member)], optim=optim,
                   train={"steps": 40}, task={"p": 11}, model={"d_model": 12, "n_heads": 2, "d_ff": 20})
    runs = separate(cfgs)
    for vectorize, check in (("vmap", assert_same_curve), ("loop", assert_identical_curve)):
        result, curves = together(cfgs, vectorize)
        for (sep_result, sep_records), got_result, got in zip(runs, result.members, curves):
            check(sep_records, got)
            assert_same_result(sep_result, got_result)


METHODS = {
    # Lion and Muon with their own betas / momenta / learning rates per member
    "lion": ({"name": "lion", "lr": 1e-3}, [{"beta1": 0.9}, {"beta1": 0.8, "beta2": 0.95, "lr": 3e-4}]),
    "muon": ({"name": "muon"}, [{"muon_lr": 0.02}, {"muon_lr": 0.01, "muon_momentum": 0.9, "weight_decay": 0.5}]),
    "stablemax": ({"loss": "stablemax"}, [{"lr": 3e-3}, {"lr": 1e-2}]),
    "orthogonal-grad": ({"orthogonal_grad": True}, [{"lr": 3e-3}, {"lr": 1e-2, "weight_decay": 0.0}]),
    "weight-norm-clip": ({"weight_norm_clip_mode": "row"}, [{"weight_norm_clip": 0.5}, {"weight_norm_clip": 0.0}]),
    "weight-norm-clip-matrix": ({"weight_norm_clip_mode": "matrix"}, [{"weight_norm_clip": 1.0}, {"weight_norm_clip": 2.0}]),
}
"""Every optimizer family and method beyond Adam/SGD, members differing in their own scalars."""


@pytest.mark.parametrize("case", list(METHODS))
def test_every_method_trains_as_a_population_equal_to_separate_runs(case):
    optim, per_member = METHODS[case]
    cfgs = configs([{"seed": i, "optim": m} for i, m in enumerate(per_member)], optim=optim, train={"steps": 30},
                   task={"p": 11}, model={"d_model": 12, "n_heads": 2, "d_ff": 20})
    runs = separate(cfgs)
    result, curves = together(cfgs, "loop")
    for (sep_result, sep_records), got_result, got in zip(runs, result.members, curves):
        assert_identical_curve(sep_records, got)
        assert_same_result(sep_result, got_result)
    result, curves = together(cfgs, "vmap")
    for (_, sep_records), got in zip(runs, curves):
        # Lion's sign() turns a last-bit difference into a whole step, and ⊥Grad rescales a small
        # perpendicular part back to ||g|| (measured: 1.4e-4 relative on the norm by step 30,
        # growing smoothly from 0 at step 1), so their curves drift faster.
        rel = {"lion": 1e-2, "orthogonal-grad": 1e-3}.get(case, 1e-4)
        assert [r["step"] for r in got] == [r["step"] for r in sep_records]
        for a, b in zip(sep_records, got):
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=rel)
            assert b["param_norm"] == pytest.approx(a["param_norm"], rel=rel)


def test_members_differing_in_model_scalars_and_dropout_match_separate_runs_in_loop_mode():
    # init scale and dropout rates are per member: loop mode keeps each member's own dropout
    # stream, so even with dropout each curve is bitwise its separate run's.
    members = [{"seed": 0, "model": {"init_scale": 1.0, "dropout_ff": 0.1}},
               {"seed": 1, "model": {"init_scale": 2.0, "dropout_attn": 0.2, "dropout_emb": 0.1}},
               {"seed": 2, "model": {"init_scale": 0.5}}]
    cfgs = configs(members, train={"steps": 30})
    runs = separate(cfgs)
    result, curves = together(cfgs, "loop")
    for (sep_result, sep_records), got_result, got in zip(runs, result.members, curves):
        assert_identical_curve(sep_records, got)
        assert_same_result(sep_result, got_result)
    result, curves = together(cfgs, "vmap")  # dropout groups vmapped apart; masks differ, so shape only
    assert [len(c) for c in curves] == [len(r) for _, r in runs]
    assert all(r.status == "budget" for r in result.members)


def test_a_diverging_member_stops_and_does_not_disturb_the_others():
    # lr * weight_decay = 1000: AdamW multiplies the weights by -999 each step (NaN within 5 steps)
    members = [MEMBERS[0], {"seed": 1, "optim": {"lr": 1e3, "weight_decay": 1.0}}, MEMBERS[2]]
    cfgs = configs(members)
    result, curves = together(cfgs)
    runs = separate(cfgs)
    assert runs[1][0].status == "diverged" and result.members[1].status == "diverged"
    assert result.members[1].final_step == runs[1][0].final_step < 60
    assert [r["step"] for r in curves[1]] == [r["step"] for r in runs[1][1]]  # no records after it stopped
    for k in (0, 2):
        assert_same_curve(runs[k][1], curves[k])
        assert result.members[k].status == "budget" and result.members[k].final_step == 60
    result, curves = together(cfgs, "loop")
    assert result.members[1].status == "diverged"
    for k in (0, 2):
        assert_identical_curve(runs[k][1], curves[k])


def test_members_that_grok_stop_and_the_median_is_reported():
    cfgs = configs([{"seed": 0}, {"seed": 1}, {"seed": 2, "optim": {"lr": 1e-2}}, {"seed": 3, "optim": {"lr": 3e-2}}],
                   train={"target_val_acc": 0.15, "target_patience": 1})
    result, curves = together(cfgs)
    runs = separate(cfgs)
    for (sep_result, sep_records), got_result, got in zip(runs, result.members, curves):
        assert_same_curve(sep_records, got)
        assert_same_result(sep_result, got_result)
    statuses = [r.status for r in result.members]
    assert statuses.count("grokked") >= 2 and "budget" in statuses  # members stop at different steps
    assert result.median_steps_to_target == median_steps_to_target([r for r, _ in runs])
    assert result.grokked_fraction == statuses.count("grokked") / 4
    fractions, medians = [], []

    def on_eval(ev, save=None):
        fractions.append(ev.grokked_fraction)
        medians.append(ev.median_record()[EVENT_STEP])

    train_population(cfgs, on_eval)
    # "so far": members that grokked stop, so it only grows, and it ends at the result's
    assert fractions == sorted(fractions) and fractions[-1] == result.grokked_fraction
    # each member's records carry its own event (its StopRule's), the median record their median
    for got_result, got in zip(result.members, curves):
        assert got[-1][EVENT_STEP] == got_result.steps_to_target
    assert medians[-1] == result.median_steps_to_target and medians[0] is None


def test_members_that_differ_in_architecture_are_refused_in_one_line():
    cfgs = configs([{"seed": 0}, {"seed": 1, "model": {"d_model": 32}}])
    with pytest.raises(SetupError, match=r"member 1 differs from member 0 in model\.d_model \(32 vs 16\)") as err:
        check_population(cfgs)
    assert "\n" not in str(err.value)
    with pytest.raises(SetupError, match="task.p"):
        train_population(configs([{}, {"task": {"p": 11}}]))
    with pytest.raises(SetupError, match="optim.name"):
        check_population(configs([{}, {"optim": {"name": "lion"}}]))


# --- checkpoints: a resumed population continues exactly where it left off ---------------------


def evals_and_checkpoint(cfgs, vectorize, directory, at_step):
    """Run the population, keeping every PopulationEval and writing the checkpoint offered at `at_step`."""
    evals = []

    def report(ev, save=None):
        evals.append(ev)
        if ev.step == at_step:
            assert save is not None, f"no checkpoint offered at step {at_step}"
            save(directory)

    return train_population(cfgs, report, vectorize=vectorize), evals


def exact(*records: dict) -> str:
    """The records without wall_time, as text: every float by its repr, so NaN equals NaN."""
    return json.dumps([{k: v for k, v in r.items() if k != "wall_time"} for r in records])


RESUME_CASES = {
    # a member diverges (NaN by step 5) and is dropped before the checkpoint at step 30
    "adamw-grokfast-ema-noise-diverged": dict(
        members=[{"seed": 0}, {"seed": 1, "optim": {"lr": 1e3, "weight_decay": 1.0}}, {"seed": 2, "optim": {"lr": 1e-2}}],
        optim={"name": "adamw", "grad_clip": 1.0, "grokfast": {"kind": "ema"}, "noise": {"eta": 0.01}}),
    "sgd-momentum-grokfast-ma": dict(
        members=[{"seed": 0}, {"seed": 1, "optim": {"momentum": 0.0}}],
        optim={"name": "sgd", "lr": 0.1, "momentum": 0.9, "grokfast": {"kind": "ma", "window": 5}}),
    # members reach the (low) target and stop at different steps, before and after the checkpoint
    # (in loop mode at steps 1, 27 and 33; one runs to the budget)
    "members-grok-and-stop": dict(
        members=[{"seed": 0}, {"seed": 1}, {"seed": 1, "optim": {"lr": 1e-2}}, {"seed": 2, "optim": {"lr": 1e-2}}],
        train={"target_val_acc": 0.15, "target_patience": 1}),
}


@pytest.mark.parametrize("vectorize", ["loop", "vmap"])
@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_a_resumed_population_continues_bitwise_as_if_uninterrupted(case, vectorize, tmp_path):
    spec = RESUME_CASES[case]
    cfgs = configs(spec["members"], optim=spec.get("optim", {}), train=spec.get("train", {}))
    full, full_evals = evals_and_checkpoint(cfgs, vectorize, tmp_path / "ck", at_step=30)
    resumed_evals = []
    resumed = train_population(cfgs, lambda ev, save=None: resumed_evals.append(ev), vectorize=vectorize,
                               resume_from=tmp_path / "ck")
    after = [ev for ev in full_evals if ev.step > 30]
    assert [ev.step for ev in resumed_evals] == [ev.step for ev in after] and after
    for want, got in zip(after, resumed_evals):
        assert exact(*got.records) == exact(*want.records)
        assert exact(*got.latest) == exact(*want.latest)
        assert exact(got.median_record()) == exact(want.median_record())
        assert got.grokked_fraction == want.grokked_fraction
    for want, got in zip(full.members, resumed.members):
        assert_same_result(want, got)
        assert exact(got.final) == exact(want.final)
    assert resumed.median_steps_to_target == full.median_steps_to_target
    assert resumed.status == full.status


def test_a_checkpoint_for_another_member_count_is_refused_in_one_line(tmp_path):
    from groktune.errors import CheckpointError

    cfgs = configs(MEMBERS)
    evals_and_checkpoint(cfgs, "loop", tmp_path / "ck", at_step=30)
    with pytest.raises(CheckpointError, match=r"different population config \(population\.members: checkpoint 3, config 2\)"):
        train_population(cfgs[:2], resume_from=tmp_path / "ck")


def test_loop_mode_is_bitwise_on_splits_of_several_eval_chunks():
    # x+y mod 101 at 0.9: 9180 train examples, two chunks of trials.metrics.EVAL_CHUNK (8192);
    # the population must score in the same chunks as score_split to sum the losses in its order.
    assert 8192 < int(0.9 * 101 * 101) <= 2 * 8192
    cfgs = configs([{"seed": 0}, {"seed": 1}], task={"p": 101, "train_fraction": 0.9},
                   train={"steps": 4, "batch_size": 64, "eval_dense_every": 2, "eval_dense_until": 4})
    runs = separate(cfgs)
    _, curves = together(cfgs, "loop")
    for (_, sep_records), got in zip(runs, curves):
        assert_identical_curve(sep_records, got)


# --- members that all stop at the same eval (configs/seeds_sweep.yaml once crashed on it) -----


@pytest.mark.parametrize("vectorize", ["loop", "vmap"])
def test_members_that_all_stop_at_the_same_eval_end_the_population_cleanly(vectorize):
    # Two copies of one config stop together (a low target, patience 1): the last live members
    # leave at once, so nothing is left to keep (keeping [] used to index with a float tensor).
    cfgs = configs([{"seed": 3}, {"seed": 3}], train={"target_val_acc": 0.15, "target_patience": 1})
    saves = []
    result = train_population(cfgs, lambda ev, save=None: saves.append((ev.step, save)), vectorize=vectorize)
    assert [r.status for r in result.members] == ["grokked", "grokked"]
    stop = result.members[0].final_step
    assert result.members[1].final_step == stop < 60
    assert saves[-1][0] == stop and saves[-1][1] is not None  # a final checkpoint is still offered


def test_the_vectorize_default_is_the_configs_and_auto_is_loop_on_a_cpu():
    import inspect

    from orchestrator.search.config import SearchConfig
    from trials.choices import resolve_vectorize

    default = SearchConfig().population_vectorize
    assert default == "auto"  # as README.md and configs/seeds_sweep.yaml say
    assert resolve_vectorize(default, "cpu") == "loop" and resolve_vectorize(default, "cuda") == "vmap"
    assert inspect.signature(train_population).parameters["vectorize"].default == default
    assert resolve_vectorize("auto", "cpu") == "loop" and resolve_vectorize("vmap", "cpu") == "vmap"


def _assert_norms_are_pre_clip(record: dict, clip: float) -> None:
    layers = [v for k, v in record.items() if k.startswith("grad_norm/")]
    assert len(layers) >= 3
    assert math.sqrt(sum(v * v for v in layers)) == pytest.approx(record["grad_norm"], rel=1e-5)
    assert record["grad_norm"] > clip  # before clipping (after it, no member's norm exceeds clip)


def test_per_layer_grad_norms_combine_to_the_total_before_clipping():
    # per-layer norms were once logged after clipping, the total before, so they disagreed
    clip = 1e-3  # far below the gradient norms here, so every step is clipped
    cfgs = configs([{"seed": 0}, {"seed": 1}], optim={"grad_clip": clip}, train={"steps": 20})
    (_, records), = separate(cfgs[:1])
    _, curves = together(cfgs, "loop")
    for record in records + curves[0] + curves[1]:
        _assert_norms_are_pre_clip(record, clip)
    assert_identical_curve(records, curves[0])


def test_a_cut_member_stops_there_and_a_member_ended_elsewhere_does_not_train():
    """`cut` (a sweep's rung cut-off) stops a member as early_stopped at that eval, before the
    checkpoint; `finished` (a resumed pack's point the ledger holds as ended) never trains; the
    others train exactly as alone."""
    cfgs = configs(MEMBERS)
    runs = separate(cfgs)
    second = runs[1][1][1]["step"]
    given = TrainResult("grokked", 40, 40, 1.0, final=dict(runs[2][1][0]))
    evals = []
    result = train_population(cfgs, lambda ev, save=None: evals.append(ev), vectorize="loop",
                              cut=lambda records: [r["member"] for r in records if r["member"] == 1 and r["step"] == second],
                              finished={2: given})
    got = [[r for ev in evals for r in ev.records if r["member"] == k] for k in range(3)]
    assert_identical_curve(runs[0][1], got[0])
    assert_same_result(runs[0][0], result.members[0])
    assert_identical_curve(runs[1][1][:2], got[1])
    assert (result.members[1].status, result.members[1].final_step) == ("early_stopped", second)
    assert [list(ev.ended) for ev in evals if ev.ended][0] == [1]
    assert got[2] == [] and result.members[2] == given

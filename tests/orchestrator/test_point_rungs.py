"""PointRungs: ASHA's cut-off per point of packed trials, shared by every pack through one file.

No Ray is started: each PointRungs object stands for one pack's worker process (they share
nothing but the sweep folder's scheduler.state), and a "kill" is a new object for the same file.
"""

import json

from orchestrator.search.point_rungs import PointRungs


def rungs(tmp_path) -> PointRungs:
    return PointRungs(str(tmp_path / "scheduler.state"), metric="loss", mode="min", max_t=900, grace_period=100,
                      reduction_factor=3)


def test_a_point_is_cut_against_the_points_of_other_packs_at_its_rung(tmp_path):
    pack_a, pack_b = rungs(tmp_path), rungs(tmp_path)
    assert pack_a.milestones() == [100, 300, 900]
    assert not pack_a.stops("a_p0", {"step": 50, "loss": 9.0})  # before the first rung: never judged
    assert [pack_a.stops(f"a_p{j}", {"step": 100, "loss": loss}) for j, loss in enumerate((3.0, 2.0, 1.0))] == [
        False, False, False]
    assert pack_b.stops("b_p0", {"step": 100, "loss": 9.0})  # below the cut-off of pack a's points
    assert not pack_b.stops("b_p1", {"step": 100, "loss": 0.5})
    assert not pack_b.stops("b_p2", {"step": 900, "loss": 99.0})  # at the budget: the trainer ends it
    state = json.loads((tmp_path / "scheduler.state").read_text())
    first = dict((m, recorded) for m, recorded in state["rungs"][0])[100]
    assert set(first) == {"a_p0", "a_p1", "a_p2", "b_p0", "b_p1"} and state["stopped"] == ["b_p0"]


def test_a_point_is_judged_once_per_rung_and_a_stop_holds_after_a_kill(tmp_path):
    pack = rungs(tmp_path)
    for j, loss in enumerate((3.0, 2.0, 1.0)):
        pack.stops(f"a_p{j}", {"step": 100, "loss": loss})
    assert pack.stops("a_p3", {"step": 100, "loss": 9.0})
    assert not pack.stops("a_p0", {"step": 120, "loss": 99.0})  # past rung 100, judged there already
    resumed = rungs(tmp_path)  # the pack restarts from a checkpoint before a_p3's stop
    assert not resumed.stops("a_p3", {"step": 60, "loss": 0.1})
    assert resumed.stops("a_p3", {"step": 100, "loss": 0.1})  # the decision made before the kill holds
    assert not resumed.stops("a_p0", {"step": 100, "loss": 99.0})  # recorded before: not judged twice


def test_hyperband_brackets_count_the_first_rungs_within_the_budget():
    from orchestrator.search.point_rungs import hyperband_brackets

    assert hyperband_brackets(900, 100, 3) == 3  # first rungs 100, 300, 900
    assert hyperband_brackets(300, 50, 2) == 3  # 50, 100, 200 (400 > 300)
    assert hyperband_brackets(80, 100, 3) == 1  # grace past the budget: the budget is the one rung
    assert hyperband_brackets(899, 100, 3) == 2


def test_hyperband_puts_each_point_in_one_bracket_the_same_in_every_pack_and_after_a_kill(tmp_path):
    def table():
        return PointRungs(str(tmp_path / "scheduler.state"), metric="loss", mode="min", max_t=900, grace_period=100,
                          reduction_factor=3, brackets=3)

    pack_a, pack_b = table(), table()
    assert [pack_a.milestones(b) for b in range(3)] == [[100, 300, 900], [300, 900], [900]]
    points = [f"t_p{j}" for j in range(60)]
    drawn = [pack_a.bracket(p) for p in points]
    assert drawn == [pack_b.bracket(p) for p in points] == [table().bracket(p) for p in points]
    counts = [drawn.count(b) for b in range(3)]
    assert counts[0] > counts[1] > counts[2] >= 0 and counts[1] > 0  # Ray's weights: more rungs, likelier
    late = next(p for p in points if pack_a.bracket(p) == 1)
    assert not pack_a.stops(late, {"step": 100, "loss": 99.0})  # bracket 1 has no rung at 100
    early = [p for p in points if pack_a.bracket(p) == 0][:4]
    for p, loss in zip(early, (1.0, 2.0, 3.0)):
        pack_a.stops(p, {"step": 100, "loss": loss})
    assert pack_b.stops(early[3], {"step": 100, "loss": 9.0})  # cut against bracket 0's points at 100
    state = json.loads((tmp_path / "scheduler.state").read_text())
    assert len(state["rungs"]) == 3
    at_100 = dict((m, r) for m, r in state["rungs"][0])[100]
    assert set(at_100) == set(early) and late not in at_100
    assert early[3] in state["stopped"] and early[0] not in state["stopped"]
    assert not table().stops(late, {"step": 300, "loss": 50.0})  # after a kill: first at bracket 1's first rung
    state = json.loads((tmp_path / "scheduler.state").read_text())
    assert set(dict((m, r) for m, r in state["rungs"][1])[300]) == {late}  # not judged among bracket 0's points

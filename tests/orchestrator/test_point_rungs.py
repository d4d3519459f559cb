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

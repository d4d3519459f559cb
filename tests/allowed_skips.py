"""The tests that may skip in CI, each with the reason it may.

With the environment variable CI set (.ci/run sets it), a skipped test that is not listed here,
and not marked `gpu`, fails the session (tests/conftest.py): a missing package, browser or
cluster then shows up red instead of as one more "s" in a line of dots. Keys are node ids
without the parametrize suffix, so one entry covers every case of a parametrized test.
"""

from __future__ import annotations

ALLOWED_SKIPS = {
    # These check what happens where no GPU is; on a GPU machine the configs they refuse are valid.
    "tests/orchestrator/test_honest_exits.py::test_gpus_on_a_machine_without_one_is_one_line_before_ray":
        "a GPU is present: gpus_per_trial is valid here",
    "tests/orchestrator/test_honest_exits.py::test_gpu_check_leaves_a_cluster_to_the_cluster":
        "a GPU is present: the check has nothing to refuse",
    "tests/orchestrator/test_bad_input.py::test_missing_device_is_found_before_the_run_folder":
        "a CUDA device is present: these configs are valid here",
    "tests/trials/test_train.py::test_fp16_without_cuda_is_a_clear_error":
        "a CUDA device is present: fp16 is valid here",
}


def allowed(nodeid: str, marked_gpu: bool) -> bool:
    """Whether a test may skip in CI: it is marked gpu (runs only where a GPU is) or listed above."""
    return marked_gpu or nodeid.split("[", 1)[0] in ALLOWED_SKIPS

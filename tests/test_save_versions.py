"""hooks._claim_save_version: two runs that start in the same millisecond get different save versions."""

from __future__ import annotations

from dataset_pruning.hooks import _claim_save_version, _release_save_version


def test_the_next_free_millisecond_past_version_folders_and_runs_in_progress(tmp_path):
    data, roots = tmp_path / "data", [tmp_path / "data/a.pt", tmp_path / "data/b.pt"]
    roots[0].mkdir(parents=True)
    (roots[1] / "2026-12-07T12.50.59.999Z").mkdir(parents=True)  # a finished run's version of b
    first = _claim_save_version(data, roots, "2026-12-07T12.50.59.999Z")
    assert first == "2026-12-07T12.51.00.000Z"  # past b's folder, across the second
    second = _claim_save_version(data, roots, "2026-12-07T12.50.59.999Z")
    assert second == "2026-12-07T12.51.00.001Z"  # past the run in progress
    _release_save_version(data, first)
    assert _claim_save_version(data, roots, "2026-12-07T12.51.00.000Z") == first  # free again once that run ended
    assert _claim_save_version(data, [], "2026-12-07T12.51.00.001Z") == "2026-12-07T12.51.00.001Z"  # writes nothing
    assert not list(roots[0].glob("*"))  # the data sets' folders are left alone

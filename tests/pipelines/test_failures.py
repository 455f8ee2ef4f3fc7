"""Every failure ends in one clear message and leaves nothing a later run would read: inputs only from finished
runs of one lineage, data sets that cannot be pruned, damaged files, a full disk, a folder that cannot be written."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from kedro.framework.hooks import hook_impl

from dataset_pruning.errors import own_error

from kedro_runs import PROJECT_ROOT, run  # noqa: E402
from test_trust import KEDRO, cli_params, runs_of, snapshot, versions  # noqa: E402

pytestmark = pytest.mark.slow
SELECT = "optimization_selection.select_samples"


class FailAt:
    """Fails the run as node ``name`` starts: what the run saved before stays, with provenance, from a FAILED run."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hook_impl
    def before_node_run(self, node) -> None:
        if node.name == self.name:
            raise RuntimeError("stopped by the test")


def one_line_error(raised: pytest.ExceptionInfo) -> str:
    """The message `kedro run` prints after "Error: " for this exception (errors.own_error); one line."""
    own = own_error(raised.value)
    assert own is not None, f"not the project's own error: {raised.value!r}"
    assert "\n" not in str(own)
    return str(own)


def partial_versions(data: Path) -> list[Path]:
    """Version folders without provenance.json: what a failed save would leave behind."""
    return [folder for folder in data.glob("*/*/*") if folder.is_dir() and not (folder / "provenance.json").exists()]


def last_run(workdir: Path):
    return runs_of(workdir).sort_values("start_time").iloc[-1]


@pytest.fixture
def fast_params(tiny_prune_params) -> dict:
    """The tiny configuration with a one-pass solver: these tests are about what a run reads, not the solve."""
    return {**tiny_prune_params, "optimization_selection": {"ratio": 0.3, "solver": "greedy", "bound_iterations": 0}}


def test_a_rerun_reads_finished_runs_of_one_lineage(kedro_project, fast_params):
    """The issue's sequence: a good 3-epoch run, a 1-epoch run that fails after saving its model, then a rerun of
    the later stages. Before: the rerun read the failed run's model and ended FINISHED with epochs=3 logged."""
    run(kedro_project, fast_params)
    one_epoch = {**fast_params, "erm_training": {"model": {"name": "mlp"}, "training": {"epochs": 1}}}
    with pytest.raises(RuntimeError, match="stopped by the test"):
        run(kedro_project, one_epoch, hooks=[FailAt("influence_scoring.score_influence")])
    runs, data = runs_of(kedro_project).sort_values("start_time"), kedro_project / "data"
    assert runs["status"].tolist() == ["FINISHED", "FAILED"]
    good, failed = runs.run_id.tolist()
    [failed_model] = [v for v, record in versions(data, "06_models/erm_model.pt").items() if record["run_id"] == failed]

    run(kedro_project, fast_params, from_nodes=[SELECT])  # reads only the finished run's outputs
    last = last_run(kedro_project)
    assert last["status"] == "FINISHED"
    assert {last[f"tags.input.{name}.run_id"] for name in ("erm_model", "influence_vectors", "train_set")} == {good}
    assert last["tags.lineage.mixed"] == "false"

    before = snapshot(data)  # the failed run's parameters: no finished output was made with them
    with pytest.raises(ValueError, match=r"erm_model \(version .*\) does not belong to this run: "
                                         r"erm_training.training.epochs = 3 there, 1 here; nothing was run"):
        run(kedro_project, one_epoch, from_nodes=[SELECT])
    assert snapshot(data) == before

    # the failed run's model pinned by the user: it is read, and the run records the mixed lineage
    run(kedro_project, fast_params, from_nodes=[SELECT], load_versions={"erm_model": failed_model})
    last = last_run(kedro_project)
    assert last["status"] == "FINISHED" and last["tags.input.erm_model.run_id"] == failed
    assert last["tags.lineage.mixed"] == "true" and set(last["tags.lineage.runs"].split(", ")) == {good, failed}
    assert "erm_model: erm_training.training.epochs = 1 there, 3 here" in last["tags.lineage.differences"]


def test_a_one_class_data_set_stops_at_ingest(kedro_project, tiny_prune_params):
    from PIL import Image

    for split in ("train", "val"):
        folder = kedro_project / "raw" / "shapes" / split / "circle"
        folder.mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (8, 8), (k, k, k)).save(folder / f"{k}.png")
    params = {**tiny_prune_params, "ingest": {"dataset": "imagefolder", "root": str(kedro_project / "raw"),
                                              "options": {"folder": "shapes", "image_size": 8}}}
    with pytest.raises(Exception) as raised:
        run(kedro_project, params)
    assert one_line_error(raised).startswith("shapes-train has 1 class(es) with training samples; pruning needs")
    assert list(kedro_project.rglob("*.pt")) == []  # stopped in ingest: nothing saved, nothing trained


def test_a_truncated_npy_input_is_named_with_its_version(kedro_project, fast_params):
    run(kedro_project, fast_params)
    data = kedro_project / "data"
    [version] = versions(data, "07_model_output/influence_vectors.npy")
    path = data / "07_model_output/influence_vectors.npy" / version / "influence_vectors.npy"
    S = np.load(path)
    path.write_bytes(path.read_bytes()[:1000])
    before = snapshot(data)
    with pytest.raises(Exception) as raised:
        run(kedro_project, fast_params, from_nodes=[SELECT])
    message = one_line_error(raised)
    assert message.startswith(f"influence_vectors version {version} is damaged ({path}: ")
    assert message.endswith("rerun the stage that writes influence_vectors, or pin another version "
                            "(--load-versions influence_vectors:<version>)")
    assert snapshot(data) == before

    np.save(path, np.full_like(S, np.nan))  # NaN in S: named as damaged, with no advice on damping
    with pytest.raises(Exception) as raised:
        run(kedro_project, fast_params, from_nodes=[SELECT])
    message = one_line_error(raised)
    assert "it holds NaN or infinite values" in message and version in message and "damping" not in message


def test_a_full_disk_names_the_folder_and_leaves_no_partial_version(kedro_project, tiny_prune_params, monkeypatch):
    """Writing meets ENOSPC (as on a full disk) while saving S, after training (the streamed S is stored by a file
    copy, other arrays by np.save): before, an OSError traceback and an empty version folder that the next run took
    for a version."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    copyfile = shutil.copyfile  # MLflow copies artifacts with it too: only the catalog's atomic writes (.part) fail
    monkeypatch.setattr(np, "save", full)
    monkeypatch.setattr(shutil, "copyfile", lambda source, target, **kw: full() if str(target).endswith(".part")
                        else copyfile(source, target, **kw))
    with pytest.raises(Exception) as raised:
        run(kedro_project, tiny_prune_params)
    message = one_line_error(raised)
    assert message.startswith(f"no space left on {kedro_project / 'data/07_model_output/influence_vectors.npy'}")
    assert partial_versions(kedro_project / "data") == []
    assert list((kedro_project / "data/07_model_output/influence_vectors.npy").iterdir()) == []
    assert runs_of(kedro_project)["status"].tolist() == ["FAILED"]


def test_a_read_only_output_folder_stops_before_any_node(kedro_project, tiny_prune_params, monkeypatch):
    folder = kedro_project / "data" / "07_model_output"
    folder.mkdir(parents=True)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes anywhere: let os.access answer as the folder's mode says, as for a user
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: real(path, mode, **kw) and (
            not mode & os.W_OK or bool(Path(path).stat().st_mode & stat.S_IWUSR)))
    try:
        with pytest.raises(Exception) as raised:
            run(kedro_project, tiny_prune_params)
    finally:
        folder.chmod(stat.S_IRWXU)
    message = str(own_error(raised.value))
    assert message.startswith("this run cannot save its outputs, nothing was run:\n")
    assert f"{folder / 'index_sets'}: this run writes there, but {folder} is not a writable folder (nor 3 more" in message
    assert len(message.splitlines()) == 2  # one line per folder in the way
    assert not (kedro_project / "data" / "06_models").exists()  # nothing was trained
    assert runs_of(kedro_project)["status"].tolist() == ["FAILED"]


def test_the_first_screen_is_the_projects(kedro_project, tiny_prune_params):
    """The README's `kedro run --pipeline=prune` with a negative damping, at 80 columns: stops before training, with
    the Error: line on the first screen and no third-party warning (before: line 80 of 83, after ERM)."""
    params = {**tiny_prune_params, "influence_scoring": {"influence": {"damping": -1}}}
    process = subprocess.run([KEDRO, "run", "--pipeline=prune", "--params", cli_params(kedro_project, params)],
                             cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                             env={**os.environ, "COLUMNS": "80", "DATASET_PRUNING_TRACEBACK": ""})
    assert process.returncode == 1
    lines = process.stdout.splitlines()
    error = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    assert error < 20 and len(lines) - error <= 5, process.stdout
    assert lines[error] == "Error: invalid parameters, nothing was run:"
    assert "influence_scoring: scoring method 'last_layer_influence': influence.damping = -1: input should be greater than or equal to 0" in lines[error + 1]
    assert "Warning" not in process.stdout and "deprecated" not in process.stdout
    assert not (kedro_project / "data" / "06_models").exists()  # nothing was trained

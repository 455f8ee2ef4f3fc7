"""The science is importable without Kedro or MLflow: importing the library never loads them."""

import subprocess
import sys

LIBRARY = [
    "dataset_pruning.data",
    "dataset_pruning.models",
    "dataset_pruning.training",
    "dataset_pruning.scoring",
    "dataset_pruning.selection",
    "dataset_pruning.config",
    "dataset_pruning.reporting",
    "dataset_pruning.experiments",
    "dataset_pruning.experiments.report",
    "dataset_pruning.steps",
    "dataset_pruning.provenance",
    "dataset_pruning.tensor_files",
    "dataset_pruning.errors",
]


def assert_runs_clean(code: str) -> None:
    """Runs ``code`` in a fresh interpreter (nothing imported yet) and fails with its stderr if it fails."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_library_imports_neither_kedro_nor_mlflow():
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in LIBRARY)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kedro', 'kedro_mlflow', 'mlflow'))\n"
        + "assert not bad, bad\n"
    )
    assert_runs_clean(code)


def test_lower_layers_do_not_import_upper_ones():
    """No upward arrow (issue 25): ``models`` knows ``nas_convnet`` without importing ``nas``, and ``tensor_files``
    stores the training trace without importing ``scoring`` (which imported ``tensor_files``: a circle)."""
    code = (
        "import sys\n"
        "import dataset_pruning.tensor_files, dataset_pruning.models\n"
        "from dataset_pruning.models import MODELS\n"
        "assert 'nas_convnet' in MODELS\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('dataset_pruning.nas', 'dataset_pruning.scoring')))\n"
        "assert not loaded, loaded\n"
    )
    assert_runs_clean(code)


def test_catalog_datasets_do_not_import_pipelines():
    """The catalog's dataset classes (``dataset_pruning.catalog``) sit below the pipelines and conf that name them
    (issue 25): importing them loads no ``dataset_pruning.pipelines`` module."""
    code = (
        "import sys\n"
        "import dataset_pruning.catalog.storage, dataset_pruning.catalog.artifacts\n"
        "import dataset_pruning.catalog.nested_runs\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('dataset_pruning.pipelines'))\n"
        "assert not loaded, loaded\n"
    )
    assert_runs_clean(code)

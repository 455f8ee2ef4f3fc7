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
    "dataset_pruning.provenance",
    "dataset_pruning.tensor_files",
    "dataset_pruning.errors",
]


def test_library_imports_neither_kedro_nor_mlflow():
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in LIBRARY)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kedro', 'kedro_mlflow', 'mlflow'))\n"
        + "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

"""``python -m dataset_pruning`` runs the project like ``kedro run``."""

from pathlib import Path

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project

from dataset_pruning.startup import start


def main(*args, **kwargs):
    start()
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()

"""Dataset pruning by generalization influence (Yang et al., ICLR 2023).

The library part (``data``, ``models``, ``training``, ``scoring``, ``selection``, ``nas``) imports neither Kedro
nor MLflow; the ``pipelines`` package wires it into Kedro.
"""

__version__ = "0.1.0"

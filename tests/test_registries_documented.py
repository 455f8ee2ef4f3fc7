"""The parameter files' lists of names and docs/scoring.md's method table say what the registries hold (issue 25):
a scorer, solver or rule added by one module shows up here as a missing line, not as a silently stale doc."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dataset_pruning.scoring import SCORERS, scorer_needs, scorer_output
from dataset_pruning.selection import RULES, SOLVERS

ROOT = Path(__file__).resolve().parents[1]


def _comment(path: str) -> str:
    """The comment lines of a parameter file, joined into one text."""
    lines = (ROOT / path).read_text().splitlines()
    return " ".join(line.split("#", 1)[1].strip() for line in lines if "#" in line)


def _names(text: str, start: str, stop: str) -> set[str]:
    return set(re.findall(r"[a-z_0-9]+", text.split(start, 1)[1].split(stop, 1)[0]))


def test_the_scoring_parameter_file_lists_every_scorer_by_output():
    text = _comment("conf/base/parameters_influence_scoring.yml")
    scalar = {name for name in SCORERS if scorer_output(name) == "scalar"}
    assert _names(text, "Scalar methods:", ".") == scalar
    vector = _names(text, "Vector methods:", ". ") - {"influence_vectors", "nothing", "recomputed"}
    assert vector == set(SCORERS) - scalar


def test_the_selection_parameter_file_lists_every_solver_and_rule():
    text = _comment("conf/base/parameters_optimization_selection.yml")
    header = (ROOT / "conf/base/parameters_optimization_selection.yml").read_text().split("\noptimization_selection:")[0]
    assert set(re.findall(r"(?:solver: |\| )([a-z_]+)\b", header)) == set(SOLVERS)
    listed_rules = set(re.findall(r"(?:^|\| |\. )([a-z_]+) \(", text.split("Rules (", 1)[1].split("Choose rule options", 1)[0]))
    assert listed_rules == set(RULES)


def test_the_scoring_docs_table_matches_the_registry():
    rows = [line.split("|")[1:-1] for line in (ROOT / "docs/scoring.md").read_text().splitlines()
            if re.match(r"\| `[a-z_0-9]+` \|", line)]
    table = {cells[0].strip().strip("`"): [cell.strip() for cell in cells] for cells in rows}
    assert set(table) == set(SCORERS)
    for name, (_, _, kept, needs, *_rest) in table.items():
        assert (kept == "vectors") == (scorer_output(name) == "vector"), name
        assert (needs if needs != "-" else "") == ", ".join(scorer_needs(name)), name


def test_the_solver_defaults_in_the_selection_parameter_file_are_the_signatures():
    """Each `# <solver>: {option: default (why), ...}` comment gives the defaults of that solver's signature."""
    text = " ".join(line.strip().lstrip("#").strip()
                    for line in (ROOT / "conf/base/parameters_optimization_selection.yml").read_text().splitlines()
                    if line.strip().startswith("#"))
    documented = dict(re.findall(r"(?:^|; |\. )([a-z]+): (\{.*?\})(?=;|$)", re.sub(r" \([^()]*\)", "", text)))
    assert set(documented) == set(SOLVERS) - {"greedy", "random"}
    for name, listed in documented.items():
        defaults = SOLVERS.options(name)
        for key, value in yaml.safe_load(listed).items():
            default = defaults[key]
            assert (list(default) if isinstance(default, tuple) else default) == value, (name, key)

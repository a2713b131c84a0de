"""mweight.seeds: the one --seeds syntax (parse) shared by train, sweep and repro."""
import subprocess
import sys

import pytest

from mweight.errors import MWeightError
from mweight.seeds import parse_seeds


def test_a_bare_number_is_a_count_a_list_is_those_seeds():
    assert parse_seeds("5") == [0, 1, 2, 3, 4]
    assert parse_seeds(3) == [0, 1, 2]
    assert parse_seeds("4,1") == [4, 1]  # order kept: runs are trained in the order given
    assert parse_seeds("5,") == [5]  # one chosen seed
    assert parse_seeds(" 2, 7 ") == [2, 7]
    assert parse_seeds(None) is None and parse_seeds("") is None


@pytest.mark.parametrize("bad", ["x", "0", "-2", "1,1", "-1,2", "1.5", ","])
def test_bad_seeds_are_one_line_errors(bad):
    with pytest.raises(MWeightError, match=r"^--seeds .*expected a positive count"):
        parse_seeds(bad)


def test_train_sweep_and_repro_read_seeds_the_same_way():
    from mweight.repro.dna import parse_seeds as repro_seeds

    assert repro_seeds("3", quick=False) == parse_seeds("3") == [0, 1, 2]
    assert repro_seeds("4,1", quick=False) == parse_seeds("4,1")
    assert repro_seeds(None, quick=True) == [0, 1]
    for command in ("train", "sweep"):
        help_text = subprocess.run([sys.executable, "-m", "mweight", command, "--help"], capture_output=True,
                                   text=True, check=True).stdout
        assert "N|S1,S2,..." in help_text and "0..N-1" in " ".join(help_text.split())

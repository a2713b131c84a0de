"""mweight.transcripts: one CSV reader and one dataset lookup for featurize, prepare, explain and the app."""
import numpy as np
import pytest

from mweight.errors import MWeightError
from mweight.transcripts import dataset_transcripts, read_transcripts


def test_mosi_layout_without_header_and_mmsa_ids(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text('"03bSnISJMiM_1","ANYHOW IT WAS REALLY GOOD","93","1"\n"03bSnISJMiM$_$10","SAD PART ","93","0"\n')
    assert read_transcripts(f) == {"03bSnISJMiM_1": "ANYHOW IT WAS REALLY GOOD", "03bSnISJMiM_10": "SAD PART"}


@pytest.mark.parametrize("header, row, expected", [
    ("id,transcript", "v_1,hello", {"v_1": "hello"}),
    ("segment_id,video,text", 'v_2,v,"good, really"', {"v_2": "good, really"}),
    ("speaker,segment_id,raw_text", "s,v_3,hi", {"v_3": "hi"}),
    ("id,transcript", "v_4,", {"v_4": ""}),  # empty text is allowed here (featurize refuses it)
])
def test_header_rules(tmp_path, header, row, expected):
    f = tmp_path / "t.csv"
    f.write_text(f"{header}\n{row}\n")
    assert read_transcripts(f) == expected


@pytest.mark.parametrize("text, message", [
    ("a_1,x\na_1,y\n", "'a_1' twice"),
    ("id,words\nv_1,x\n", "column 'transcript' missing"),
    ("a_1\n", "line 1 has 1 column"),
    ("", "empty"),
])
def test_bad_files_name_the_problem(tmp_path, text, message):
    f = tmp_path / "t.csv"
    f.write_text(text)
    with pytest.raises(MWeightError, match=message):
        read_transcripts(f)


def test_dataset_lookup_takes_the_first_string_column(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, id=np.array(["a_1", "a_2"]), words=np.array(["w1", "w2"]), text=np.array(["t1", "t2"]),
             transcript=np.array([1.0, 2.0]))  # a numeric 'transcript' is not text: skipped
    assert dataset_transcripts(f) == {"a_1": "w1", "a_2": "w2"}
    assert dataset_transcripts(tmp_path / "missing.npz") == {} and dataset_transcripts(None) == {}

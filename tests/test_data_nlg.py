"""NLG loading (E2E, WebNLG 2017, DART): the real files, malformed files, and the hub fallback.

The real-data tests read <shared data>/nlg (/work/shared/data/nlg, or $PST_SHARED_DATA/nlg)
and check the official input and reference counts, so a parsing slip (a quoted newline
splitting a row, a lost final line, a reference file out of step) shows up as a wrong count.
"""

import os

# Before datasets is imported: the hub is unreachable from the test machines.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import time
from collections import Counter
from pathlib import Path

import datasets
import huggingface_hub.constants as hub_constants
import pytest
from omegaconf import OmegaConf

from helpers import SHARED_DATA, needs_shared
from pst_bench.data.nlg import NlgSplit, linearise_e2e_mr, linearise_triples, load_nlg_split
from pst_bench.errors import ConfigError, DataError

TASK_CONF = Path(__file__).resolve().parents[1] / "conf" / "task"
NLG_DATA = SHARED_DATA / "nlg"
needs_real_data = needs_shared("nlg")


def task(name, **overrides):
    return OmegaConf.merge(OmegaConf.load(TASK_CONF / f"{name}.yaml").task, overrides)  # `_global_` file


def local(data_dir):
    return OmegaConf.create({"dir": str(data_dir), "hub_dataset": "nyu-mll/glue"})


def real(name, split, **overrides):
    return load_nlg_split(task(name, **overrides), local(SHARED_DATA), split)


def n_refs(split):
    return sum(len(refs) for refs in split.references)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", ["e2e", "webnlg", "dart"])
def test_task_configs(name):
    cfg = task(name)
    assert (cfg.name, cfg.kind, cfg.local_dir, cfg.metric) == (name, "nlg", name, "bleu")
    assert list(cfg.eval_splits) == ["validation"]
    assert cfg.main_split == "validation"
    assert cfg.hub_dataset and cfg.max_source_length > 0 and cfg.max_target_length > 0


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="e2e_format='csv'"):
        load_nlg_split(task("e2e", e2e_format="csv"), local(tmp_path), "train")
    with pytest.raises(ConfigError, match="no split 'dev'"):
        load_nlg_split(task("dart"), local(tmp_path), "dev")
    with pytest.raises(ConfigError, match="Unknown NLG task 'sst2'"):
        load_nlg_split(OmegaConf.create({"name": "sst2"}), local(tmp_path), "train")


# --------------------------------------------------------------------------- linearisation


def test_e2e_mr_linearisation_follows_lora():
    assert linearise_e2e_mr("name[Alimentum], area[city centre], familyFriendly[no]") == (
        "name : Alimentum | area : city centre | family friendly : no"
    )
    assert linearise_e2e_mr(
        "name[The Vaults], eatType[pub], priceRange[more than £30], customer rating[5 out of 5], near[Café Adriatic]"
    ) == (
        "name : The Vaults | Type : pub | price : more than £30 | customer rating : 5 out of 5 | near : Café Adriatic"
    )
    for bad in ["", "name[Alimentum], ", "name[Alimentum] area[riverside]", "name Alimentum", "name[Ali[m]entum]"]:
        with pytest.raises(ValueError):
            linearise_e2e_mr(bad)


def test_triple_linearisation_follows_lora():
    triples = [("Aarhus_Airport", "cityServed", '"Aarhus, Denmark"'), ("Aarhus", "leaderName", "Jacob_Bundsgaard")]
    # WebNLG: properties as written.
    assert linearise_triples(triples, lowercase_relation=False) == (
        'Aarhus_Airport : cityServed : "Aarhus, Denmark" | Aarhus : leaderName : Jacob_Bundsgaard'
    )
    # DART: relations lowercased, entities untouched.
    assert linearise_triples([("[TABLECONTEXT]", "[TITLE]", "Jeff Daniels")], lowercase_relation=True) == (
        "[TABLECONTEXT] : [title] : Jeff Daniels"
    )


def test_training_pairs_one_per_reference():
    split = NlgSplit("train", ["a", "b"], [["a1", "a2"], ["b1"]])
    assert split.training_pairs() == [("a", "a1"), ("a", "a2"), ("b", "b1")]
    assert len(split) == 2 and split.num_references == 3


# --------------------------------------------------------------------------- real files: E2E


@needs_real_data
def test_e2e_official_counts_and_grouping():
    train, dev, test = (real("e2e", s) for s in ("train", "validation", "test"))
    # rows -> distinct MRs (train is shuffled: identical MRs are grouped wherever they are)
    assert (n_refs(train), len(train)) == (42_061, 4_862)
    assert (n_refs(dev), len(dev)) == (4_672, 547)
    assert (n_refs(test), len(test)) == (4_693, 630)
    assert len(train.training_pairs()) == 42_061
    assert dev.sources[0] == "name : Alimentum | area : city centre | family friendly : no"
    assert len(dev.references[0]) == 6
    assert dev.references[0][0] == "There is a place in the city centre, Alimentum, that is not family-friendly."
    assert dev.references[0][-1] == "Alimentum in city centre is not a family-friendly place."
    assert test.sources[0] == "name : Blue Spice | Type : coffee shop | area : city centre"
    assert len(test.references[0]) == 2
    # two trainset references hold a newline inside their quoted field: kept, not split into rows
    assert sum("\n" in ref for refs in train.references for ref in refs) == 2


@needs_real_data
def test_e2e_lora_format():
    dev = real("e2e", "validation", e2e_format="lora")  # valid.txt: 4,672 lines
    assert (n_refs(dev), len(dev)) == (4_672, 547)
    assert dev.references[0][0] == "There is a place in the city centre , Alimentum , that is not family - friendly ."
    test = real("e2e", "test", e2e_format="lora")
    assert (n_refs(test), len(test)) == (4_693, 630)
    # Same inputs as the official CSV, up to LoRA's Moses tokenisation of values (£ 20 - 25).
    official = real("e2e", "validation")
    assert [s.replace(" ", "") for s in dev.sources] == [s.replace(" ", "") for s in official.sources]
    assert [len(r) for r in dev.references] == [len(r) for r in official.references]
    with pytest.raises(DataError, match="train.txt") as info:
        real("e2e", "train", e2e_format="lora")
    assert "e2e_format=official" in str(info.value)


@needs_real_data
def test_the_nlg_folder_itself_works_as_the_root():
    dev = load_nlg_split(task("dart"), local(NLG_DATA), "validation")
    assert len(dev) == 2_768


# --------------------------------------------------------------------------- real files: WebNLG


@needs_real_data
def test_webnlg_counts():
    train, dev = real("webnlg", "train"), real("webnlg", "validation")
    assert (len(train), n_refs(train)) == (6_940, 18_102)
    assert (len(dev), n_refs(dev)) == (872, 2_268)
    assert train.sources[0] == 'Aarhus_Airport : cityServed : "Aarhus, Denmark"'
    assert dev.sources[0] == "Aarhus : leaderName : Jacob_Bundsgaard"
    assert dev.references[0] == ["The leader of Aarhus is Jacob Bundsgaard."]
    # LoRA's converter keeps only comment == "good" and drops inputs left without one.
    good_train = real("webnlg", "train", only_good_lex=True)
    good_dev = real("webnlg", "validation", only_good_lex=True)
    assert (len(good_train), n_refs(good_train), len(good_dev), n_refs(good_dev)) == (6_935, 18_025, 871, 2_258)


@needs_real_data
def test_webnlg_test_references_from_the_official_lex_files():
    test = real("webnlg", "test", test_references="lex")
    assert (len(test), n_refs(test)) == (1_862, 4_928)
    assert test.sources[0] == "Abilene_Regional_Airport : cityServed : Abilene,_Texas"
    assert test.references[0] == [
        "abilene , texas is served by the abilene regional airport .",
        "abilene regional airport serves the city of abilene in texas .",
    ]
    counts = Counter(len(refs) for refs in test.references)
    assert min(counts) == 1 and max(counts) == 8 and counts[8] == 1  # one input uses all 8 files
    as_json = real("webnlg", "test")  # the default: raw text, like the model's outputs
    assert as_json.sources == test.sources
    assert [len(r) for r in as_json.references] == [len(r) for r in test.references]
    assert as_json.references[0][0] == "Abilene, Texas is served by the Abilene regional airport."


# --------------------------------------------------------------------------- real files: DART


@needs_real_data
def test_dart_dev_json_and_test_xml():
    dev = real("dart", "validation")
    assert (len(dev), n_refs(dev)) == (2_768, 6_980)
    assert (
        dev.sources[0] == "Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina"
    )
    assert dev.references[0] == ["A school from Mars Hill, North Carolina, joined in 1973."]
    test = real("dart", "test")
    # 12,552 <lex> elements; one is empty (entry 116, eid Id116) and is not a reference.
    assert (len(test), n_refs(test)) == (5_097, 12_551)
    assert test.sources[0] == (
        "Hawaii Five-O : notes : Episode: The Flight of the Jewels | "
        "[TABLECONTEXT] : [title] : Jeff Daniels | [TABLECONTEXT] : title : Hawaii Five-O"
    )
    assert test.references[0] == ["Jeff Daniels played in the Hawaii Five-O episode The Flight of the Jewels"]
    assert test.references[115] == ["reserved (previously G721) has 1 channel and 8000 Hz clock rate"]


@needs_real_data
def test_dart_official_reference_files():
    test = real("dart", "test", test_references="lex")
    assert (len(test), n_refs(test)) == (5_097, 11_245)  # at most 3 per input, lowercased and tokenised
    assert test.references[0] == ["jeff daniels played in the hawaii five - o episode the flight of the jewels"]
    assert test.sources == real("dart", "test").sources


@needs_real_data
def test_missing_dart_train_names_the_file_and_the_hub():
    with pytest.raises(DataError) as info:
        real("dart", "train")
    message = str(info.value)
    assert str(NLG_DATA / "dart" / "dart-v1.1.1-full-train.json") in message
    assert "Yale-LILY/dart" in message and "hub" in message


# --------------------------------------------------------------------------- malformed files


def write(path, text, newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_missing_folder_says_where_it_looked(tmp_path):
    with pytest.raises(DataError) as info:
        load_nlg_split(task("webnlg"), local(tmp_path), "train")
    message = str(info.value)
    assert str(tmp_path / "webnlg") in message and str(tmp_path / "nlg" / "webnlg") in message
    assert "PST_DATA_DIR" in message


def test_e2e_csv_missing_column(tmp_path):
    path = write(tmp_path / "e2e" / "e2e-dataset" / "devset.csv", 'mr\n"name[A], area[riverside]"\n')
    with pytest.raises(DataError, match="line 1: header lacks column") as info:
        load_nlg_split(task("e2e"), local(tmp_path), "validation")
    assert str(path) in str(info.value)


def test_e2e_csv_bad_row_reports_the_line_where_it_starts(tmp_path):
    text = (
        'mr,ref\n"name[A], area[riverside]","A is by the river,\nsays line three."\n'
        '"name[A], area[riverside]",Fine.\n"name[B]"\n'
    )
    path = write(tmp_path / "nlg" / "e2e" / "e2e-dataset" / "devset.csv", text, newline="\r\n")
    with pytest.raises(DataError) as info:
        load_nlg_split(task("e2e"), local(tmp_path), "validation")
    assert f"{path}, line 5: expected 2 comma-separated fields" in str(info.value)
    write(path, 'mr,ref\n"name[A], area[riverside]",Fine.\n"name[A] area[x]",Bad MR.\n')
    with pytest.raises(DataError, match=r"line 3: malformed meaning representation"):
        load_nlg_split(task("e2e"), local(tmp_path), "validation")


def test_e2e_csv_groups_multiline_references(tmp_path):
    text = 'mr,ref\n"name[A], eatType[pub]","Line one,\nline two."\n"name[B]",B.\n"name[A], eatType[pub]",Again A.\n'
    write(tmp_path / "e2e" / "devset.csv", text)  # also found directly in the e2e folder
    dev = load_nlg_split(task("e2e"), local(tmp_path), "validation")
    assert dev.sources == ["name : A | Type : pub", "name : B"]
    assert dev.references == [["Line one,\nline two.", "Again A."], ["B."]]


def test_lora_line_without_separator(tmp_path):
    path = write(
        tmp_path / "e2e" / "valid.txt", "name : A||A is here . \nname : A||A again . \nname : B, B is there .\n"
    )
    with pytest.raises(DataError) as info:
        load_nlg_split(task("e2e", e2e_format="lora"), local(tmp_path), "validation")
    assert f"{path}, line 3: expected 'source||reference'" in str(info.value)


def webnlg_entry(key, lexicalisations=True):
    entry = {
        "category": "Airport",
        "modifiedtripleset": [{"subject": "Aarhus", "property": "leaderName", "object": "Jacob_Bundsgaard"}],
    }
    if lexicalisations:
        entry["lexicalisations"] = [{"comment": "good", "lex": "The leader of Aarhus is Jacob Bundsgaard."}]
    return {key: entry}


def test_webnlg_entry_without_lexicalisations(tmp_path):
    import json

    path = tmp_path / "webnlg" / "dev.json"
    write(path, json.dumps({"entries": [webnlg_entry("1"), webnlg_entry("2", lexicalisations=False)]}))
    with pytest.raises(DataError) as info:
        load_nlg_split(task("webnlg"), local(tmp_path), "validation")
    assert f"{path}, entry 2: no 'lexicalisations'" in str(info.value)
    # Test references from the .lex files: the JSON lexicalisations are not needed there.
    write(tmp_path / "webnlg" / "test.json", path.read_text())
    write(tmp_path / "webnlg" / "references" / "gold-all-cat-reference0.lex", "ref one .\nref two .\n")
    write(tmp_path / "webnlg" / "references" / "gold-all-cat-reference1.lex", "\nref two b .\n")
    test = load_nlg_split(task("webnlg", test_references="lex"), local(tmp_path), "test")
    assert test.references == [["ref one ."], ["ref two .", "ref two b ."]]
    # A reference file out of step with the inputs is an error, not a silent shift.
    write(tmp_path / "webnlg" / "references" / "gold-all-cat-reference1.lex", "\n")
    with pytest.raises(DataError, match="has 1 lines but .* has 2 inputs"):
        load_nlg_split(task("webnlg", test_references="lex"), local(tmp_path), "test")


def test_webnlg_bad_json_and_bad_keys(tmp_path):
    import json

    path = write(tmp_path / "webnlg" / "train.json", '{\n  "entries": [\n    {"1": }\n  ]\n}')
    with pytest.raises(DataError, match=r"line 3, column \d+: not valid JSON"):
        load_nlg_split(task("webnlg"), local(tmp_path), "train")
    write(path, json.dumps({"entries": [webnlg_entry("1"), webnlg_entry("3")]}))
    with pytest.raises(DataError, match="entry 2: expected an object keyed '2'"):
        load_nlg_split(task("webnlg"), local(tmp_path), "train")


DART_XML = """<?xml version='1.0' encoding='utf-8'?>
<benchmark>
  <entries>
    <entry category="MISC" eid="Id1" size="1">
      <modifiedtripleset>
        <mtriple>Newberry College | NICKNAME | Wolves</mtriple>
      </modifiedtripleset>
      <lex comment="WikiSQL_decl_sents" lid="Id1">Newberry College's nickname is the wolves.</lex>
      <lex comment="x" lid="Id2"/>
    </entry>
    <entry category="MISC" eid="Id2" size="1">
      <modifiedtripleset>
      </modifiedtripleset>
      <lex comment="x" lid="Id1">Nothing to say.</lex>
    </entry>
  </entries>
</benchmark>"""


def test_dart_xml_entry_without_mtriple(tmp_path):
    path = write(tmp_path / "dart" / "dart-v1.1.1-full-test.xml", DART_XML, newline="\r\n")
    with pytest.raises(DataError) as info:
        load_nlg_split(task("dart"), local(tmp_path), "test")
    assert f"{path}, entry 2 (eid Id2): no <mtriple>" in str(info.value)
    fixed = DART_XML.replace(
        '      </modifiedtripleset>\n      <lex comment="x" lid="Id1">Nothing',
        '        <mtriple>A | B</mtriple>\n      </modifiedtripleset>\n      <lex comment="x" lid="Id1">Nothing',
    )
    write(path, fixed, newline="\r\n")
    with pytest.raises(DataError, match=r"entry 2 \(eid Id2\): <mtriple> must be 'subject \| relation \| object'"):
        load_nlg_split(task("dart"), local(tmp_path), "test")
    write(path, fixed.replace("A | B", "A | REL | B"), newline="\r\n")
    test = load_nlg_split(task("dart"), local(tmp_path), "test")
    assert test.sources == ["Newberry College : nickname : Wolves", "A : rel : B"]
    assert test.references == [["Newberry College's nickname is the wolves."], ["Nothing to say."]]
    write(path, DART_XML[:200])
    with pytest.raises(DataError, match=r"line \d+, column \d+: not well-formed XML"):
        load_nlg_split(task("dart"), local(tmp_path), "test")


# --------------------------------------------------------------------------- hub


def test_offline_hub_without_folder_fails_fast_with_a_fix(offline_hub_with_empty_cache):
    for name, revision in (("e2e", None), ("dart", "refs/convert/parquet")):
        start = time.monotonic()
        with pytest.raises(DataError) as info:
            load_nlg_split(task(name, hub_revision=revision), OmegaConf.create({"dir": None}), "validation")
        assert time.monotonic() - start < 10
        message = str(info.value)
        assert task(name).hub_dataset in message and "no local data folder" in message
        assert "data.dir=" in message and "PST_DATA_DIR" in message
        assert info.value.__cause__ is None and info.value.__suppress_context__
    assert datasets.config.HF_HUB_OFFLINE is False and hub_constants.HF_HUB_OFFLINE is False  # restored


def fake_hub(monkeypatch, splits):
    """datasets.load_dataset answering `splits` (name -> rows, shaped as on the hub) and recording its calls."""
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return {name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls


# The column mappings below are checked against rows shaped like the hub datasets' documented
# features; the real hub data cannot be reached from the test machines.


def test_hub_e2e_rows_are_grouped(monkeypatch):
    rows = [{"meaning_representation": "name[A], priceRange[cheap]", "human_reference": r} for r in ("A1", "A2")]
    rows.append({"meaning_representation": "name[B]", "human_reference": "B1"})
    calls = fake_hub(monkeypatch, {"train": rows, "validation": rows, "test": rows})
    split = load_nlg_split(task("e2e"), OmegaConf.create({"dir": ""}), "validation")
    assert calls == [(("tuetschek/e2e_nlg",), {"revision": "refs/convert/parquet", "data_dir": "default"})]
    assert split.sources == ["name : A | price : cheap", "name : B"]
    assert split.references == [["A1", "A2"], ["B1"]]
    calls.clear()
    load_nlg_split(task("e2e", hub_revision=None, hub_config="x"), OmegaConf.create({"dir": None}), "test")
    assert calls == [(("tuetschek/e2e_nlg", "x"), {})]


def test_hub_webnlg_dev_split_and_columns(monkeypatch):
    row = {
        "modified_triple_sets": {"mtriple_set": [["Aarhus | leaderName | Jacob_Bundsgaard"]]},
        "lex": {"comment": ["good", "toFix"], "text": ["Leader is JB.", "Leader JB"], "lid": ["Id1", "Id2"]},
    }
    calls = fake_hub(monkeypatch, {"train": [row], "dev": [row], "test": [row]})
    split = load_nlg_split(task("webnlg"), OmegaConf.create({"dir": None}), "validation")
    assert calls[0][1]["data_dir"] == "webnlg_challenge_2017"
    assert split.sources == ["Aarhus : leaderName : Jacob_Bundsgaard"]
    assert split.references == [["Leader is JB.", "Leader JB"]]
    good = load_nlg_split(task("webnlg", only_good_lex=True), OmegaConf.create({"dir": None}), "train")
    assert good.references == [["Leader is JB."]]


def test_hub_dart_columns(monkeypatch):
    row = {
        "tripleset": [["Newberry College", "NICKNAME", "Wolves"]],
        "subtree_was_extended": False,
        "annotations": {"source": ["WikiSQL_decl_sents"], "text": ["Newberry College's nickname is the wolves."]},
    }
    fake_hub(monkeypatch, {"train": [row, row], "validation": [row], "test": [row]})
    train = load_nlg_split(task("dart"), OmegaConf.create({"dir": None}), "train")
    assert train.sources == ["Newberry College : nickname : Wolves"] * 2
    assert train.training_pairs()[0] == (
        "Newberry College : nickname : Wolves",
        "Newberry College's nickname is the wolves.",
    )

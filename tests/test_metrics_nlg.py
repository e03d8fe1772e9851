"""NLG metrics (BLEU, TER, NIST, METEOR, ROUGE-L) on hand-checked values, and offline WordNet."""

import json
import math
import os
import warnings
from pathlib import Path

import pytest

from pst_bench.errors import ConfigError
from pst_bench.install import wordnet as wordnet_setup
from pst_bench.metrics import nlg
from pst_bench.metrics.nlg import DEFAULT_METRICS, compute_nlg_metrics, metric_settings

# No metric needs WordNet except METEOR; those tests use WORDNET_FREE.
WORDNET_FREE = ("bleu", "nist", "ter", "rouge_l")

# nltk's own METEOR/NIST docstring example (nltk.translate.meteor_score / nist_score).
DOC_HYPOTHESIS = "It is a guide to action which ensures that the military always obeys the commands of the party"
DOC_REFERENCES = [
    "It is a guide to action that ensures that the military will forever heed Party commands",
    "It is the guiding principle which guarantees the military forces always being under the command of the Party",
    "It is the practical guide for the army always to heed the directions of the party",
]

# A pair small enough to score by hand (see test_bleu_ter_rouge_by_hand).
HYP = "the cat sat on the mat"
REF = "the cat sat on the red mat"


def _nltk_wordnet_loads() -> bool:
    return wordnet_setup.loaded_wordnet_root() is not None


needs_wordnet = pytest.mark.skipif(
    # Debian's files first: when they are there, collection does not pay for loading WordNet.
    not (wordnet_setup.DEFAULT_SOURCE / "data.noun").is_file() and not _nltk_wordnet_loads(),
    reason="no WordNet: Debian's wordnet-base / wordnet-sense-index are not installed "
    f"({wordnet_setup.DEFAULT_SOURCE} is missing) and nltk finds no wordnet corpus",
)


def test_bleu_ter_rouge_by_hand():
    # Hypothesis: 6 tokens; reference: 7 tokens (an extra "red").
    # BLEU n-gram precisions: 1-grams 6/6; 2-grams 4/5 ("the mat" missing);
    # 3-grams 3/4 ("on the mat" missing); 4-grams 2/3 ("sat on the mat" missing).
    # Brevity penalty exp(1 - 7/6). No count is zero, so smoothing never applies:
    # BLEU = exp(-1/6) * (1 * 4/5 * 3/4 * 2/3) ** (1/4) = 0.846482 * 0.795271 = 67.318 (x100).
    bleu = 100 * math.exp(1 - 7 / 6) * (1 * 4 / 5 * 3 / 4 * 2 / 3) ** 0.25
    # TER: one insertion ("red") over 7 reference words.
    ter = 100 * 1 / 7
    # ROUGE-L: LCS = all 6 hypothesis tokens; P = 6/6, R = 6/7, F1 = 2PR / (P + R) = 12/13.
    rouge_l = 12 / 13
    scores = compute_nlg_metrics([HYP], [[REF]], metrics=("bleu", "ter", "rouge_l"))
    assert bleu == pytest.approx(67.318, abs=1e-3)
    assert scores["bleu"] == pytest.approx(bleu, abs=1e-9)
    assert scores["ter"] == pytest.approx(ter) == pytest.approx(14.2857, abs=1e-4)
    assert scores["ter_fraction"] == pytest.approx(1 / 7)
    assert scores["rouge_l"] == pytest.approx(rouge_l)
    assert set(scores) == {"bleu", "ter", "ter_fraction", "rouge_l"}
    assert all(type(value) is float for value in scores.values())  # JSON-safe


def test_nist_by_hand():
    # One reference "hello world" (2 words): info(hello) = info(world) = log2(2 / 1) = 1,
    # info(hello world) = log2(count(hello) / count(hello world)) = log2(1) = 0.
    # Precision sums: 1-grams (1 + 1) / 2 = 1, 2-grams 0 / 1 = 0; equal lengths, no penalty: NIST = 1.
    # Orders 3-5 have no hypothesis n-grams at all; nltk alone would divide by zero.
    assert compute_nlg_metrics(["hello world"], [["hello world"]], metrics=("nist",)) == {"nist": 1.0}


def test_nist_matches_nltk_doc_example():
    from nltk.translate import nist_score

    # The docstring prints "3.3709..." (doctest ELLIPSIS: truncated, the value is 3.370993...).
    assert "3.3709..." in nist_score.sentence_nist.__doc__
    scores = compute_nlg_metrics([DOC_HYPOTHESIS], [DOC_REFERENCES], metrics=("nist",))
    assert str(scores["nist"]).startswith("3.3709")
    # No punctuation, so 13a tokens are the docstring's whitespace tokens: exactly nltk's value.
    assert scores["nist"] == nist_score.sentence_nist([r.split() for r in DOC_REFERENCES], DOC_HYPOTHESIS.split())


@needs_wordnet
def test_meteor_matches_nltk_doc_example():
    from nltk.translate import meteor_score

    assert "0.6944" in meteor_score.meteor_score.__doc__  # the value below is the docstring's
    scores = compute_nlg_metrics([DOC_HYPOTHESIS], [DOC_REFERENCES], metrics=("meteor",))
    assert round(scores["meteor"], 4) == 0.6944


@needs_wordnet
def test_meteor_is_a_sentence_mean():
    one = compute_nlg_metrics([DOC_HYPOTHESIS], [DOC_REFERENCES], metrics=("meteor",))["meteor"]
    two = compute_nlg_metrics(
        [DOC_HYPOTHESIS, "no match here"], [DOC_REFERENCES, ["entirely different words"]], metrics=("meteor",)
    )["meteor"]
    assert two == pytest.approx(one / 2)  # the second sentence scores 0


def test_unequal_reference_counts():
    hyps = ["a small cat sat on the mat", "the dog barked at the postman all day"]
    refs = [
        ["a cat was sitting on the mat", "a small cat sat on the mat", "there is a cat on the mat"],
        ["the dog barked at the postman all day"],
    ]
    scores = compute_nlg_metrics(hyps, refs, metrics=WORDNET_FREE)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["ter"] == 0.0
    assert scores["rouge_l"] == pytest.approx(1.0)
    assert metric_settings(("bleu",), references=refs)["bleu"]["signature"].startswith("nrefs:var|")


def test_missing_references_are_dropped_not_counted_as_empty():
    # TER's denominator is each hypothesis's mean reference length (tercom). Hypothesis 1:
    # 1 edit, references of 7 and 8 words (mean 7.5); hypothesis 2: 1 edit ("loudly"), one
    # 4-word reference. Padding the missing second reference with "" would make its mean 2.
    hyps = [HYP, "a dog barked"]
    refs = [[REF, "dogs and cats are not the same animals"], ["a dog barked loudly"]]
    scores = compute_nlg_metrics(hyps, refs, metrics=("ter",))
    assert scores["ter_fraction"] == pytest.approx(2 / (7.5 + 4))


def test_lowercase_flag():
    hyps, refs = ["The Cat sat on the mat"], [["the cat sat on the mat"]]
    mixed = compute_nlg_metrics(hyps, refs, metrics=("bleu", "ter", "nist", "rouge_l"))
    folded = compute_nlg_metrics(hyps, refs, metrics=("bleu", "ter", "nist", "rouge_l"), lowercase=True)
    assert mixed["bleu"] < 100 and mixed["ter"] > 0 and mixed["rouge_l"] < 1
    assert folded["bleu"] == pytest.approx(100.0) and folded["ter"] == 0.0 and folded["rouge_l"] == 1.0
    assert folded["nist"] > mixed["nist"]


def test_settings_cover_every_metric():
    refs = [[REF], [REF, HYP]]
    scores = compute_nlg_metrics([HYP, HYP], refs, metrics=WORDNET_FREE)
    settings = metric_settings(WORDNET_FREE, references=refs)
    assert list(settings) == list(WORDNET_FREE)
    assert {key for entry in settings.values() for key in entry["outputs"]} == set(scores)
    for entry in settings.values():
        assert entry["library"] and entry["version"] and entry["tokenisation"]
    assert settings["nist"]["max_ngram_order"] == nlg.NIST_ORDER == 5
    assert settings["bleu"]["max_ngram_order"] == 4
    assert "case:mixed" in settings["bleu"]["signature"] and "case:mixed" in settings["ter"]["signature"]
    assert "case:lc" in metric_settings(("ter",), lowercase=True)["ter"]["signature"]
    # METEOR's entry works whether or not WordNet is loaded, and everything is JSON.
    all_settings = metric_settings(DEFAULT_METRICS)
    assert list(all_settings) == list(DEFAULT_METRICS)
    assert all_settings["meteor"]["lowercase"] is True
    json.dumps(all_settings)


def test_bad_input():
    with pytest.raises(ConfigError, match="unknown NLG metric"):
        compute_nlg_metrics([HYP], [[REF]], metrics=("bleu", "cider"))
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference lists"):
        compute_nlg_metrics([HYP, HYP], [[REF]], metrics=("bleu",))
    with pytest.raises(ValueError, match="non-empty list"):
        compute_nlg_metrics([HYP], [REF], metrics=("bleu",))  # a string, not a list of references
    with pytest.raises(ValueError, match="non-empty list"):
        compute_nlg_metrics([HYP], [[]], metrics=("bleu",))


def test_meteor_without_wordnet_says_how_to_fix(monkeypatch):
    monkeypatch.setattr(nlg, "_wordnet_root", lambda: None)
    monkeypatch.setattr(wordnet_setup, "loaded_wordnet_root", lambda: None)
    with pytest.raises(ConfigError, match="make install") as error:
        compute_nlg_metrics([HYP], [[REF]], metrics=("bleu", "meteor"))
    assert "wordnet-base" in str(error.value) and "pst_bench.install.wordnet" in str(error.value)


# --- WordNet setup --------------------------------------------------------------------------------


def test_lexnames_table_parses_like_nltk():
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    lines = wordnet_setup.lexnames_text().splitlines()
    assert len(lines) == 45
    for i, line in enumerate(lines):  # what WordNetCorpusReader.__init__ does with each line
        index, name, category = line.split()
        assert int(index) == i and line.count("\t") == 2
        assert category == {"noun": "1", "verb": "2", "adj": "3", "adv": "4"}[name.split(".")[0]]
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"
    # The module copies every file nltk's reader opens, and writes the one Debian lacks.
    assert {*wordnet_setup.REQUIRED_FILES, "lexnames"} == set(WordNetCorpusReader._FILES)


def _fake_wordnet(folder: Path, lex_filenum: str = "05") -> Path:
    """A one-synset WordNet 3.0 dict folder: noun 'dog' at byte offset 0 of data.noun."""
    folder.mkdir(parents=True)
    for name in wordnet_setup.REQUIRED_FILES:
        (folder / name).write_text("")
    (folder / "data.noun").write_text(f"00000000 {lex_filenum} n 01 dog 0 000 | a domesticated canid  \n")
    (folder / "index.noun").write_text("dog n 1 0 1 0 00000000  \n")
    return folder


def test_build_from_fake_wordnet_is_idempotent(tmp_path, monkeypatch):
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    source, data_root = _fake_wordnet(tmp_path / "dict"), tmp_path / "nltk_data"
    # nltk.pathsec: readers only open files under nltk.data.path. Only the fake
    # there: nltk's reader also maps its synsets onto the "wordnet" corpus on the
    # path (WordNetCorpusReader.map_wn), which is then the fake, not the 30 MB real one.
    monkeypatch.setattr(nltk.data, "path", [str(data_root)])
    corpus = wordnet_setup.build_wordnet_corpus(data_root, source)
    assert corpus == data_root / "corpora" / "wordnet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synset = WordNetCorpusReader(str(corpus), None).synsets("dog")[0]
    assert synset.lexname() == "noun.animal" and synset.definition() == "a domesticated canid"

    # A second run rewrites nothing; a symlink in place of a file becomes a real copy.
    stamps = {p.name: p.stat().st_mtime_ns for p in corpus.iterdir()}
    (corpus / "index.noun").unlink()
    (corpus / "index.noun").symlink_to(source / "index.noun")
    os.utime(corpus / "lexnames", ns=(1, 1))
    wordnet_setup.build_wordnet_corpus(data_root, source)
    assert not (corpus / "index.noun").is_symlink()
    assert (corpus / "index.noun").read_text() == (source / "index.noun").read_text()
    assert (corpus / "lexnames").stat().st_mtime_ns == 1  # same content: left alone
    for name, stamp in stamps.items():
        if name not in {"index.noun", "lexnames"}:
            assert (corpus / name).stat().st_mtime_ns == stamp, name


def test_build_checks_outside_nltks_path_and_restores_it(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "elsewhere")])
    wordnet_setup.build_wordnet_corpus(tmp_path / "nltk_data", _fake_wordnet(tmp_path / "dict"))
    assert nltk.data.path == [str(tmp_path / "elsewhere")]  # the target was on it only for the check


def test_build_rejects_missing_files_and_foreign_lexnames(tmp_path):
    incomplete = _fake_wordnet(tmp_path / "incomplete")
    (incomplete / "index.sense").unlink()
    with pytest.raises(FileNotFoundError, match="index.sense.*wordnet-sense-index"):
        wordnet_setup.build_wordnet_corpus(tmp_path / "out1", incomplete)
    # File 29 is verb.body: a noun synset there means another WordNet's numbering.
    foreign = _fake_wordnet(tmp_path / "foreign", lex_filenum="29")
    with pytest.raises(ValueError, match="is this WordNet 3.0"):
        wordnet_setup.build_wordnet_corpus(tmp_path / "out2", foreign)


def test_main_does_nothing_when_nltk_already_loads_wordnet(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(wordnet_setup, "loaded_wordnet_root", lambda: "/somewhere/wordnet")
    assert wordnet_setup.main([str(tmp_path / "nltk_data")]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not (tmp_path / "nltk_data").exists()


def test_default_target_is_on_nltks_path():
    import nltk

    assert str(wordnet_setup.default_target()) in nltk.data.path


@needs_wordnet
def test_real_wordnet_loads():
    root = wordnet_setup.loaded_wordnet_root()
    assert root is not None, (
        f"{wordnet_setup.DEFAULT_SOURCE} has WordNet but nltk cannot load it: run "
        "`make install` or `python -m pst_bench.install.wordnet`"
    )
    from nltk.corpus import wordnet

    assert wordnet.synsets("dog")
    assert wordnet.get_version() == "3.0"

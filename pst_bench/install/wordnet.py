"""Build NLTK's WordNet corpus offline from Debian's WordNet 3.0 files.

METEOR (``nltk.translate.meteor_score``) matches synonyms through
``nltk.corpus.wordnet``, which nltk normally fetches with ``nltk.download``.
This machine (and CI) cannot reach nltk's download server, but Debian ships the
same Princeton WordNet 3.0 database in two packages:

    apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index

which put the dict files under ``/usr/share/wordnet``. nltk's reader needs them
in an ``nltk_data`` folder as ``corpora/wordnet/`` plus one file Debian lacks,
``lexnames`` (the lexicographer-file table of lexnames(5WN)); this module
copies the files there and writes that table.

Usage::

    python -m pst_bench.install.wordnet [TARGET_DIR] [--source DIR] [--force]

TARGET_DIR defaults to ``<sys.prefix>/nltk_data``, a folder nltk searches by
default (``nltk.data.path``), so inside a virtualenv nothing else (no
``NLTK_DATA``) is needed. If nltk can already load WordNet from anywhere on its
path the command does nothing (``--force`` builds anyway). Running it again is
harmless: files already in place are left alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..files import atomic_write_text

__all__ = [
    "DEBIAN_PACKAGES",
    "DEFAULT_SOURCE",
    "LEXICOGRAPHER_FILES",
    "REQUIRED_FILES",
    "build_wordnet_corpus",
    "default_target",
    "lexnames_text",
    "loaded_wordnet_root",
    "main",
]

DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")
DEFAULT_SOURCE = Path("/usr/share/wordnet")
# Princeton's licence as Debian ships it; copied next to the data it covers.
DEBIAN_LICENSE = Path("/usr/share/doc/wordnet-base/copyright")
INSTALL_HINT = (
    "install WordNet 3.0 with `apt-get install -y --no-install-recommends "
    + " ".join(DEBIAN_PACKAGES)
    + "` and run `make install` (or `python -m pst_bench.install.wordnet`)"
)

# The files nltk's WordNetCorpusReader opens (its ``_FILES``), except
# ``lexnames``, which this module writes. wordnet-sense-index provides
# index.sense; wordnet-base provides the rest.
REQUIRED_FILES = (
    "cntlist.rev",
    "index.sense",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)

# WordNet 3.0's lexicographer files in file-number order, as listed in
# lexnames(5WN): a synset's ``lex_filenum`` field in data.* indexes this tuple.
LEXICOGRAPHER_FILES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)

# lexnames' third column, the syntactic category (lexnames(5WN)), follows from
# the file name's prefix.
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
# data.* ss_type letters by the category they belong to ("s" = adjective satellite).
_SS_TYPE_CATEGORY = {"n": 1, "v": 2, "a": 3, "s": 3, "r": 4}


def default_target() -> Path:
    """``<sys.prefix>/nltk_data``: on nltk's default search path, private to this environment."""
    return Path(sys.prefix) / "nltk_data"


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` per lexicographer file."""
    lines = (
        f"{number:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}" for number, name in enumerate(LEXICOGRAPHER_FILES)
    )
    return "\n".join(lines) + "\n"


def loaded_wordnet_root() -> str | None:
    """Where ``nltk.corpus.wordnet`` loads from, or None when nltk cannot load it.

    This really loads the corpus (a few seconds): a folder that exists but is
    incomplete only shows itself when the reader opens its files.
    """
    from nltk.corpus import wordnet

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the missing-OMW warning; METEOR is English only
            wordnet.ensure_loaded()
            return str(wordnet.root)
    except LookupError:  # not on nltk's path: nltk suggests nltk.download, which cannot work here
        return None
    except (OSError, ValueError, AssertionError):  # a folder that exists but is broken
        return None


def build_wordnet_corpus(target_root: Path | str, source: Path | str = DEFAULT_SOURCE) -> Path:
    """Copy WordNet from ``source`` into ``<target_root>/corpora/wordnet`` and write lexnames.

    Files already there with the same size and modification time are kept, so
    a second run copies nothing. Returns the corpus folder, checked by loading
    it with nltk's reader.
    """
    source, folder = Path(source), Path(target_root) / "corpora" / "wordnet"
    _check_source(source)
    _check_lexicographer_numbers(source)
    folder.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES:
        _copy_if_changed(source / name, folder / name)
    if DEBIAN_LICENSE.is_file():
        _copy_if_changed(DEBIAN_LICENSE, folder / "LICENSE")
    _write_if_changed(folder / "lexnames", lexnames_text())
    _check_loads(folder)
    return folder


def _check_source(source: Path) -> None:
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"WordNet 3.0 files missing from {source}: {', '.join(missing)}; {INSTALL_HINT}.")


def _check_lexicographer_numbers(source: Path) -> None:
    """Fail on a WordNet whose lex_filenum fields do not fit WordNet 3.0's lexnames table.

    A different WordNet release could number its lexicographer files
    differently; nltk would then give synsets wrong lexnames silently.
    """
    for pos in ("noun", "verb", "adj", "adv"):
        with open(source / f"data.{pos}", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith(" "):  # the licence header
                    continue
                offset, lex_filenum, ss_type = line.split(" ", 3)[:3]
                number = int(lex_filenum)
                if (
                    number >= len(LEXICOGRAPHER_FILES)
                    or _CATEGORY[LEXICOGRAPHER_FILES[number].split(".")[0]] != _SS_TYPE_CATEGORY[ss_type]
                ):
                    raise ValueError(
                        f"{source / f'data.{pos}'}: synset {offset} has lexicographer file "
                        f"{lex_filenum} (type {ss_type}), which WordNet 3.0's lexnames table "
                        "does not allow; is this WordNet 3.0?"
                    )


def _copy_if_changed(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` as a real file (never a link) unless an identical copy is there."""
    if dst.is_symlink():
        dst.unlink()  # nltk is to read its own copy, not whatever a link points at later
    elif dst.is_file():
        have, want = dst.stat(), src.stat()
        if have.st_size == want.st_size and int(have.st_mtime) == int(want.st_mtime):
            return
    shutil.copy2(src, dst)  # copy2 keeps the mtime, which the check above compares


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    atomic_write_text(path, text)


def _check_loads(folder: Path) -> None:
    """Open the new corpus with nltk's own reader and look a word up.

    nltk (3.9.3 and later, ``nltk.pathsec``) only opens files under the folders
    of ``nltk.data.path`` (and refuses symlinks, hence the copies), so the
    target's nltk_data folder joins that path for the duration of the check.
    """
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    data_root = str(folder.parent.parent)
    saved = list(nltk.data.path)
    nltk.data.path.append(data_root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no OMW reader: multilingual lookups are not needed
            reader = WordNetCorpusReader(str(folder), None)
            found = reader.synsets("dog")
    finally:
        nltk.data.path[:] = saved
    if not found:
        raise RuntimeError(f"the WordNet corpus built in {folder} has no synsets for 'dog'")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pst_bench.install.wordnet",
        description="Build nltk's WordNet corpus (for METEOR) from Debian's WordNet 3.0 files.",
    )
    parser.add_argument(
        "target",
        nargs="?",
        type=Path,
        default=None,
        help=f"nltk_data folder to write corpora/wordnet/ into (default: {default_target()})",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"folder with the WordNet 3.0 dict files (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="build even when nltk can already load WordNet from somewhere else",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parse_args(argv)
    if not args.force:
        root = loaded_wordnet_root()
        if root is not None:
            print(f"nltk already loads WordNet from {root}; nothing to do.")
            return 0
    target = args.target if args.target is not None else default_target()
    try:
        folder = build_wordnet_corpus(target, args.source)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"wordnet_setup: error: {error}", file=sys.stderr)
        return 1
    print(f"WordNet corpus for nltk written to {folder}")
    if target.resolve() not in {Path(p).resolve() for p in _nltk_path()}:
        print(f"note: {target} is not on nltk's search path; set NLTK_DATA={target}")
    return 0


def _nltk_path() -> list[str]:
    import nltk

    return list(nltk.data.path)


if __name__ == "__main__":
    sys.exit(main())

"""Tests of the stores' shared resumable journal (wsis.data.journal); detectron2-free."""
import json
import logging
import os

import pytest

from wsis.data import journal as journal_module
from wsis.data.journal import Journal, encode_line
from wsis.data.store_format import _check_int

PROVENANCE = {"method": "toy", "params": {"k": 1}, "wsis_version": "0.0", "source": "s", "source_hash": "h"}
LOGGER = logging.getLogger("wsis.test_journal")


class ToyError(ValueError):
    pass


def parse_line(obj, where):
    """A toy store's line: {"image_id": int, "value": str}."""
    if not isinstance(obj, dict) or set(obj) != {"image_id", "value"}:
        raise ToyError(f"{where}: a line is {{'image_id', 'value'}}, got {obj!r}")
    return {"image_id": _check_int(obj["image_id"], "image_id", where, ToyError), "value": str(obj["value"])}


def open_journal(path, provenance=PROVENANCE, **kwargs):
    return Journal(path, "wsis.toy.journal", 1, provenance, parse_line=parse_line, error=ToyError,
                   what="toy journal", writer="ToyWriter", unit="output", logger=LOGGER, **kwargs)


def entry(image_id):
    return {"image_id": image_id, "value": f"v{image_id}"}


def add(journal, *ids):
    for i in ids:
        journal.append(i, encode_line(entry(i)), entry(i))


@pytest.fixture
def path(tmp_path):
    """A journal holding the header and the lines of images 5, 2, 9 (closed)."""
    p = str(tmp_path / "toy.partial.jsonl")
    j = open_journal(p)
    add(j, 5, 2, 9)
    j.close()
    return p


def lines_of(path):
    return open(path, "rb").read().splitlines(keepends=True)


def test_header_and_lines_are_the_documented_bytes(path):
    header, *lines = lines_of(path)
    assert header == (b'{"format":"wsis.toy.journal","format_version":1,"provenance":{"method":"toy",'
                      b'"params":{"k":1},"source":"s","source_hash":"h","wsis_version":"0.0"}}\n')
    assert lines == [b'{"image_id":%d,"value":"v%d"}\n' % (i, i) for i in (5, 2, 9)]


def test_resume_reads_the_lines_back(path):
    j = open_journal(path, keep_entries=True)
    assert list(j.lines) == [5, 2, 9] and j.entries == {i: entry(i) for i in (5, 2, 9)}
    assert [j.read(i) for i in sorted(j.lines)] == [entry(2), entry(5), entry(9)]
    add(j, 7)
    j.close()
    assert list(open_journal(path).lines) == [5, 2, 9, 7]


def test_kill_mid_line_drops_the_half_written_line(path, caplog):
    with open(path, "ab") as f:
        f.write(encode_line(entry(4))[:11])
    size = os.path.getsize(path)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        j = open_journal(path)
    assert list(j.lines) == [5, 2, 9] and "Dropping the half-written last line" in caplog.text
    assert os.path.getsize(path) == size - 11  # truncated on opening, before any append
    add(j, 4)
    j.close()
    assert lines_of(path)[-1] == encode_line(entry(4)) and list(open_journal(path).lines) == [5, 2, 9, 4]


def test_kill_while_writing_the_header_starts_anew(tmp_path):
    p = str(tmp_path / "toy.partial.jsonl")
    open(p, "wb").write(b'{"format":"wsis.to')
    j = open_journal(p)
    assert j.lines == {}
    j.close()
    assert len(lines_of(p)) == 1 and json.loads(lines_of(p)[0])["format"] == "wsis.toy.journal"


def test_corruption_in_the_middle_is_an_error(path):
    header, a, b, c = lines_of(path)
    open(path, "wb").write(header + a[:10] + b"\n" + b + c)
    with pytest.raises(ToyError, match=r"line 2 is corrupt"):
        open_journal(path)
    open(path, "wb").write(header + a + b'{"image_id":2}\n' + c)  # valid JSON, refused by parse_line
    with pytest.raises(ToyError, match=r"line 3 is corrupt \(.*line 3: a line is"):
        open_journal(path)


def test_an_image_twice_is_an_error(path):
    header, a, b, c = lines_of(path)
    open(path, "wb").write(header + a + b + a + c)
    with pytest.raises(ToyError, match=r"line 4: image_id=5 appears twice"):
        open_journal(path)


def test_other_provenance_is_refused_naming_the_keys(path):
    other = dict(PROVENANCE, params={"k": 2}, source="t")
    with pytest.raises(ToyError, match=r"different provenance \(source: 's' -> 't'; params\.k: 1 -> 2\)"):
        open_journal(path, other)
    j = open_journal(path, other, overwrite=True)
    assert j.lines == {}
    j.close()
    assert json.loads(lines_of(path)[0])["provenance"] == other and len(lines_of(path)) == 1


@pytest.mark.parametrize("header", [b'{"format":"wsis.other.journal","format_version":1}\n',
                                    b'{"format":"wsis.toy.journal","format_version":2}\n', b"[1, 2]\n", b"{x\n"])
def test_other_format_or_version_is_refused(tmp_path, header):
    p = str(tmp_path / "toy.partial.jsonl")
    open(p, "wb").write(header)
    with pytest.raises(ToyError, match=r"not a wsis toy journal \(version 1\); delete it or pass overwrite=True"):
        open_journal(p)
    assert open(p, "rb").read() == header  # left as it was


@pytest.mark.skipif(journal_module.fcntl is None, reason="needs POSIX file locks")
def test_a_second_journal_on_the_same_file_is_refused(path):
    j = open_journal(path)
    discarded = []
    with pytest.raises(ToyError, match="locked by another ToyWriter; use one writer per output"):
        open_journal(path, overwrite=True, on_overwrite=lambda: discarded.append(True))
    assert not discarded and list(j.lines) == [5, 2, 9]  # the running one's files untouched
    j.close()
    assert list(open_journal(path).lines) == [5, 2, 9]  # the lock goes with the file


def test_overwrite_empties_it_then_calls_on_overwrite(path):
    seen = []
    j = open_journal(path, overwrite=True, on_overwrite=lambda: seen.append(os.path.getsize(path)))
    assert seen == [0] and j.lines == {}
    j.close()


def test_a_failed_append_leaves_no_partial_line(path, monkeypatch):
    j = open_journal(path)
    size = os.path.getsize(path)

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(journal_module.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        add(j, 4)
    assert os.path.getsize(path) == size and 4 not in j.lines
    monkeypatch.undo()
    add(j, 6)
    j.close()
    assert lines_of(path)[-1] == encode_line(entry(6)) and list(open_journal(path).lines) == [5, 2, 9, 6]


def test_drop_rewrites_without_the_lines(path):
    j = open_journal(path, keep_entries=True)
    j.drop([2])
    assert list(j.lines) == [5, 9] and list(j.entries) == [5, 9] and j.read(9) == entry(9)
    add(j, 2)
    j.close()
    assert lines_of(path)[1:] == [encode_line(entry(i)) for i in (5, 9, 2)]


def test_remove_closes_and_deletes(path):
    j = open_journal(path)
    assert not j.closed
    j.remove()
    assert j.closed and not os.path.exists(path)

"""The vectorised line and field splitter agrees with Python's csv module, line by line."""

from __future__ import annotations

import csv
import io
import random

import pytest

from ridelake.errors import SourceError
from ridelake.tables import csvlines


def _fields(lines: csvlines.Lines) -> list[list[str]]:
    values = lines.values.to_pylist()
    return [values[b:b + n] for b, n in zip(lines.field_base.tolist(), lines.n_fields.tolist())]


def test_fields_match_csv_reader_on_random_lines():
    rng = random.Random(5)
    alphabet = ['a', 'b', ',', '"', '""', ' ', 'é', '"x"', ',"y,z"', "\t"]
    texts = []
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
        if text.strip("\r\n"):
            texts.append(text)
    lines = csvlines.split_lines("\r\n".join(texts).encode() + b"\n", ["c1", "c2"])
    assert len(lines) == len(texts)
    got = _fields(lines)
    for text, fields in zip(texts, got):
        assert fields == next(csv.reader(io.StringIO(text))), text
    assert lines.raw.to_pylist() == texts


def test_regular_lines_take_the_vectorised_path_and_unescape_quotes():
    data = b'"""CNR1""",a b,"x,y",,"he said ""hi"""\r\nplain,2\n'
    lines = csvlines.split_lines(data, ["a", "b", "c", "d", "e"], first_row=7)
    assert _fields(lines) == [['"CNR1"', "a b", "x,y", "", 'he said "hi"'], ["plain", "2"]]
    assert lines.source_row.tolist() == [7, 8]
    assert lines.problems.null_count == 2
    assert lines.column(4).to_pylist() == ['he said "hi"', None]


def test_cr_lf_and_crlf_all_end_lines_and_blank_lines_are_skipped():
    lines = csvlines.split_lines(b"a,1\r\rb,2\n\nc,3\r\n\r\nd,4", ["x", "y"])
    assert _fields(lines) == [["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"]]


def test_an_unclosed_quote_is_a_problem_of_its_line_only():
    lines = csvlines.split_lines(b'a,"open,b\nc,d\n', ["first", "second"])
    assert _fields(lines) == [["a", "open,b"], ["c", "d"]]
    assert lines.problems.to_pylist() == ["second: unclosed double quote (a field cannot span lines)", None]


def test_bad_utf8_is_named_by_field_and_byte_and_kept_in_the_raw_line():
    lines = csvlines.split_lines(b"ok,fine\ncaf\xe9,x\nalso \xc3\xa9 ok,y\n", ["name", "other"])
    assert lines.problems.to_pylist() == [None, "name: not UTF-8 at byte 4 of the line (0xE9)", None]
    assert lines.raw.to_pylist() == ["ok,fine", "caf\\xe9,x", "also é ok,y"]
    assert _fields(lines)[2] == ["also é ok", "y"]


def test_fields_over_the_limit_are_problems():
    lines = csvlines.split_lines(b"abcdef,x\nab,x\n", ["long", "short"], field_limit=4)
    assert lines.problems.to_pylist() == ["long: field over 4 bytes (6 bytes)", None]


@pytest.mark.parametrize("block_size", [1, 3, 7, 64, 1 << 20])
def test_blocks_hold_whole_lines_whatever_their_size(block_size):
    body = b"r1,a\r\nr2,b\rr3,c\n\r\nr4,d"
    out = []
    for block, truncated in csvlines.iter_blocks(io.BytesIO(body), b"", block_size):
        assert truncated is None
        out += [f[0] for f in _fields(csvlines.split_lines(block, ["k", "v"]))]
    assert out == ["r1", "r2", "r3", "r4"]


def test_an_overlong_line_is_cut_and_the_next_line_still_read():
    body = b"x" * 100 + b"\nnext,1\n"
    blocks = list(csvlines.iter_blocks(io.BytesIO(body), b"", block_size=16, line_limit=40))
    head, total = blocks[0]
    assert total == 100 and 0 < len(head) <= 100 and set(head) == {ord("x")}
    lines = csvlines.split_lines(blocks[0][0], ["a"], truncated=blocks[0][1], line_limit=40)
    assert lines.problems.to_pylist()[0].startswith("line over 40 bytes (100 bytes)")
    rest = b"".join(b for b, t in blocks[1:] if t is None)
    assert _fields(csvlines.split_lines(rest, ["a", "b"])) == [["next", "1"]]


def test_an_overlong_line_keeps_whole_characters():
    body = ("é" * 60).encode() + b"\n"
    (head, total), = list(csvlines.iter_blocks(io.BytesIO(body), b"", block_size=33, line_limit=40))[:1]
    assert total == 120 and head.decode("utf-8") == "é" * (len(head) // 2)


def test_header_drops_a_byte_order_mark_and_refuses_other_encodings():
    names, rest = csvlines.read_header(io.BytesIO(b"\xef\xbb\xbfDate, Time \r\n1,2\r\n"), "f.csv")
    assert names == ["Date", "Time"] and rest.endswith(b"1,2\r\n")
    with pytest.raises(SourceError, match="f.csv: the header is not UTF-8 at byte 3"):
        csvlines.read_header(io.BytesIO(b"Da\xe9te\n"), "f.csv")
    with pytest.raises(SourceError, match="empty"):
        csvlines.read_header(io.BytesIO(b""), "f.csv")


@pytest.mark.parametrize("data", [b"a,1\r\rb,2\n\nc,3\r\n\r\nd,4", b"", b"\r\n\n", b"x", b' "un,closed\nnext,1\n',
                                  b"\xff\xfebad,utf8\r\nok,2\r\n"])
def test_lines_are_counted_as_the_splitter_finds_them(data):
    # the reading thread numbers blocks with count_lines while threads split them
    assert csvlines.count_lines(data) == len(csvlines.split_lines(data, ["x", "y"]))

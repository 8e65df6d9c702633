"""The marketers' paths file: reading, writing, and errors that name the line and field."""

import pytest

from attribution.paths_file import read_paths_file, write_paths_file
from cdp.errors import SourceError


def write(tmp_path, text: str, name="paths.csv"):
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    return file


def test_reads_paths_with_header_bom_and_blank_lines(tmp_path):
    file = write(tmp_path, "\ufeffpath;total_conversions;total_conversion_value;total_null\n"
                           "facebook > email>direct;2;150.5;7\n\n direct ;0;0;3\nfacebook > email > direct;1;20;0\n")
    paths = read_paths_file(file)
    assert paths.channels == ("direct", "email", "facebook")
    assert paths.path_strings() == ["facebook > email > direct", "direct"]
    assert paths.conversions.tolist() == [3, 0]  # the repeated path is summed
    assert paths.value.tolist() == [170.5, 0]
    assert paths.nulls.tolist() == [7, 3]


def test_roundtrip(tmp_path):
    file = write(tmp_path, "a > b;1;10.25;0\nb;1;20;1\n")  # no header is fine too
    paths = read_paths_file(file)
    write_paths_file(paths, tmp_path / "again.csv")
    again = read_paths_file(tmp_path / "again.csv")
    assert again.to_frame().equals(paths.to_frame())


@pytest.mark.parametrize(("text", "message"), [
    ("path;total_conversions;total_conversion_value;total_null\na > b;x;1;0\n",
     r"paths\.csv, line 2, field total_conversions: 'x' is not a non-negative number"),
    ("a;1;-5;0\n", r"line 1, field total_conversion_value: '-5' is not a non-negative number"),
    ("a;1;5;nan\n", r"line 1, field total_null: 'nan'"),
    ("a;1;5;0\n;1;2;0\n", r"line 2, field path: empty path"),
    ("a > > b;1;2;0\n", r"line 1, field path: an empty channel name"),
    ("path,total_conversions,total_conversion_value,total_null\n",
     r"line 1: 1 field\(s\) separated by ';', expected 4: .*comma- or tab-separated"),
    ("a;1;2\n", r"line 1: 3 field\(s\)"),
    ("path;total_conversions;total_conversion_value;total_null\n", r"no paths"),
    ("a;0;0;0\n", r"zero conversions and zero nulls"),
])
def test_malformed_files_name_the_line_and_field(tmp_path, text, message):
    with pytest.raises(SourceError, match=message):
        read_paths_file(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.csv: not found"):
        read_paths_file(tmp_path / "nope.csv")


def test_channels_of_any_other_text_round_trip_and_unwritable_ones_are_refused(tmp_path):
    from attribution.paths import PathCounts
    from cdp.errors import SchemaError

    odd = ['face=book [ads]', '"organic" social', "insta {gram} 📸", "بحث جوجل", "e-mail, list: 1", "a\\b it's"]
    paths = PathCounts.from_paths([odd[:3], odd[3:], [odd[0]]], [1, 2, 0], [10.0, 20.0, 0.0], [0, 1, 4])
    write_paths_file(paths, tmp_path / "paths.csv")
    again = read_paths_file(tmp_path / "paths.csv")
    assert again.path_strings() == paths.path_strings() and set(again.channels) == set(odd)
    for channel in ("a;b", "a > b", "line\nbreak", " padded"):
        bad = PathCounts.from_paths([[channel]], [1], [1.0], [0])
        with pytest.raises(SchemaError, match="cannot be written to paths file"):
            write_paths_file(bad, tmp_path / "bad.csv")


def test_a_path_a_spreadsheet_would_run_is_written_as_text_and_read_back_as_it_was(tmp_path):
    file = write(tmp_path, '=HYPERLINK("http://evil.example") > email;2;10;1\n@sum > direct;1;5;0\n')
    paths = read_paths_file(file)
    write_paths_file(paths, tmp_path / "again.csv")
    lines = (tmp_path / "again.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert sorted(lines) == sorted(["'=HYPERLINK(\"http://evil.example\") > email;2;10;1", "'@sum > direct;1;5;0"])
    assert read_paths_file(tmp_path / "again.csv").to_frame().equals(paths.to_frame())

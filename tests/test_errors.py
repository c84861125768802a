"""devicekit.errors.first_line: the one helper that turns a library's exception into a one-line reason."""

from devicekit.errors import first_line


def test_first_line_of_a_multi_line_message():
    assert first_line(ValueError("  bad shape\n  at layer 3\n")) == "bad shape"


def test_an_empty_message_is_the_type_name():
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("   \n")) == "RuntimeError"
    assert first_line(RuntimeError(""), typed=True) == "RuntimeError"


def test_cut_at_the_limit_or_whole_with_none():
    exc = RuntimeError("x" * 500 + "\nsecond")
    assert first_line(exc) == "x" * 300
    assert first_line(exc, 200) == "x" * 200
    assert first_line(exc, None) == "x" * 500


def test_typed_names_the_exception():
    assert first_line(OSError("no such file\ntrace"), typed=True) == "OSError: no such file"

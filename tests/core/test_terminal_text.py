"""Text from outside printed on a terminal: control characters escaped, printable Unicode kept."""

from __future__ import annotations

import pytest

from core.terminal_text import escape_controls


def test_control_and_escape_characters_are_shown_escaped_on_one_line():
    """ESC sequences, CSI (U+009B), carriage returns and newlines are shown as \\xNN, so the
    text can neither drive the terminal nor start a forged line."""
    shown = escape_controls("\x1b[31mred\r\nbatch 9: forged\u009b2J")
    assert shown == "\\x1b[31mred\\x0d\\x0abatch 9: forged\\x9b2J"
    assert shown.isprintable()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Imprimante hors ligne à l'étage, « urgent » 🙂", "Imprimante hors ligne à l'étage, « urgent » 🙂"),
        ("\x00\x07\x7f", "\\x00\\x07\\x7f"),
        ("left\u202eright\u2028next", "left\\u202eright\\u2028next"),
        ("a literal \\x1b", "a literal \\\\x1b"),
    ],
)
def test_printable_unicode_stays_and_nothing_else_passes(text, shown):
    """Accents, guillemets and emoji print as they are; NUL, BEL, DEL, a bidi override and a line
    separator are escaped; a backslash is doubled, so a sender cannot forge an escape."""
    assert escape_controls(text) == shown


def test_kept_characters_pass_as_they_are():
    """What a caller keeps (the supervisor keeps tabs and backslashes) is not escaped."""
    assert escape_controls("\tat Foo\\Bar\x1b", keep="\t\\") == "\tat Foo\\Bar\\x1b"

"""Text from outside (a ticket's request, a service's log line) made safe to print on a terminal.

A control character in printed text acts on the terminal instead of showing: ESC and CSI
(U+009B) start sequences that move the cursor, clear the screen or retitle the window, a
newline or a carriage return forges or overwrites a log line, a bidi override reorders
what follows. Each is shown as a Python-style escape instead; printable Unicode (accents,
« », emoji) stays as it is.
"""

from __future__ import annotations

import unicodedata

__all__ = ["escape_controls"]

# Control (C0, DEL, C1), format (bidi overrides, zero-width), line and paragraph separators,
# surrogates: none has a glyph of its own.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def escape_controls(text: str, keep: str = "") -> str:
    """`text` on one line, each unprintable character as \\xNN, \\uNNNN or \\UNNNNNNNN and each
    backslash doubled, so that no escape can be forged; the characters in `keep` stay as they are."""
    return "".join(char if char in keep else _escape(char) for char in text)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) not in _UNPRINTABLE_CATEGORIES:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

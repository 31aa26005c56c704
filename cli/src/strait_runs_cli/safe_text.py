"""Text from the API (messages, payload strings, ids) made safe to print on a terminal: control
characters, escape sequences included, are shown as `\\xNN` instead of being obeyed."""

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: str) -> str:
    """`text` with every control character except newline and tab escaped."""
    return _CONTROL.sub(_escape, text)


def one_line(text: str) -> str:
    """`text` on one line: newlines, tabs and other control characters escaped."""
    return _CONTROL_OR_NEWLINE.sub(_escape, text)

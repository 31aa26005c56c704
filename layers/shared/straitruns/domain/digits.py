"""Integers read from text (query values, headers, cursors): ASCII digits only, and bounded in
length before `int()` sees them (Python refuses to convert more than 4,300 digits, and no count,
sequence or size of the service needs more than `limits.TEXT_INT_DIGITS`)."""

from straitruns.domain import limits


def is_ascii_digits(text: str) -> bool:
    """`0`-`9` only, at least one (Unicode digits such as `١٢` are not)."""
    return text.isascii() and text.isdigit()


def bounded_int(text: str, max_digits: int = limits.TEXT_INT_DIGITS) -> int | None:
    """The value of `text` when it is ASCII digits with at most `max_digits` significant digits
    (leading zeros aside), else None."""
    if not is_ascii_digits(text):
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= max_digits else None

"""Text for a terminal: user text (run names, config, notes, errors) printed safely.

Kept apart from the table formatting so that the command line's start-up (and
``gradtrace --version``) imports neither numpy nor pandas.
"""

from __future__ import annotations

import re

# What a terminal acts on instead of printing: C0 controls but tab and newline,
# DEL and C1 (ESC sequences clear the screen, set the title, make hyperlinks),
# bidirectional overrides (text that reads other than it is), lone surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal would act on shown escaped.

    >>> print(terminal_safe("run\\x1b]0;pwned\\x07 ok"))
    run\\x1b]0;pwned\\x07 ok
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def one_field(text: object) -> str:
    """One field of user text (a name, a label, a config value) on one line:
    :func:`terminal_safe`, with line breaks and tabs shown escaped too.

    >>> print(one_field("a\\nb\\x1b[31m"))
    a\\nb\\x1b[31m
    """
    return terminal_safe(str(text)).replace("\n", "\\n").replace("\t", "\\t")

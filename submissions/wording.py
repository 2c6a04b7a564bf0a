"""The grader's messages in the reader's language.

The grader (no Django) words its messages in English from templates marked with
``grader.i18n.gettext_noop`` and stores them filled in (``Submission.error``,
``GradingRun.error``): readable as they are in the admin, a log or an old database. To show one
in another language, ``student_message`` finds the template it was filled from among the
catalogue's msgids, reads the values back out of it, translates each value that is itself a
message (a clause inside "…; run the grader's check command…"), writes numbers the reader's way
and fills the translated template. A message no template matches (a framework's own words
quoted in it, or a message stored by an older grader) is shown as it is.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
import re
from pathlib import Path

from django.conf import settings
from django.utils import translation
from django.utils.formats import number_format

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%%")
#: a value that is only a number as the grader wrote it: 4.0, 1,000,000, 300
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?")
#: templates must say something besides their values, or they would match anything
MIN_LITERAL = 8
MAX_DEPTH = 4


def _pattern(msgid: str) -> re.Pattern[str] | None:
    parts: list[str] = []
    seen: set[str] = set()
    literal = 0
    position = 0
    for match in PLACEHOLDER.finditer(msgid):
        text = msgid[position : match.start()]
        literal += len(text)
        parts.append(re.escape(text))
        name = match.group(1)
        if name is None:
            parts.append("%")
        elif name in seen:
            parts.append(f"(?P={name})")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>.+?)")
        position = match.end()
    tail = msgid[position:]
    literal += len(tail)
    parts.append(re.escape(tail))
    if not seen or literal < MIN_LITERAL:
        return None
    return re.compile("".join(parts), re.DOTALL)


@functools.cache
def _templates(language: str) -> list[tuple[re.Pattern[str], str]]:
    """This project's templates with values (``locale/<language>``), the most specific first."""
    found: list[tuple[re.Pattern[str], str]] = []
    for folder in settings.LOCALE_PATHS:
        try:
            catalogue = gettext_module.translation("django", Path(folder), [language])
        except OSError:  # no catalogue for this language (English)
            continue
        # The stdlib keeps a .mo file's entries in ``_catalog``; Django's JavaScriptCatalog
        # reads it the same way.
        for msgid in getattr(catalogue, "_catalog", {}):
            if isinstance(msgid, str) and msgid:
                pattern = _pattern(msgid)
                if pattern is not None:
                    found.append((pattern, msgid))
    found.sort(key=lambda item: -len(PLACEHOLDER.sub("", item[1])))
    return found


def _value(text: str, depth: int) -> str:
    if NUMBER.fullmatch(text):
        return number_format(text.replace(",", ""), use_l10n=True, force_grouping="," in text)
    return _translate(text, depth + 1)


def _translate(text: str, depth: int) -> str:
    translated = translation.gettext(text)
    if translated != text or depth > MAX_DEPTH:
        return translated
    for pattern, msgid in _templates(translation.get_language() or settings.LANGUAGE_CODE):
        match = pattern.fullmatch(text)
        if match:
            values = {name: _value(value, depth) for name, value in match.groupdict().items()}
            return translation.gettext(msgid) % values
    return text


def student_message(text: str) -> str:
    """``text``, a message the grader or the upload checks wrote, in the active language."""
    if not text:
        return text
    return _translate(text, 0)

"""What real files carry -> what the extractors read. Every change is counted under its own name in the
manifest's `cleaning` section (counts of field values, or of interactions for duplicates).

Item text fields (title, brand, category), in this order:
- `html_entities`: entities unescaped (`&amp;` -> `&`, `&#39;` -> `'`; repeated for double escapes);
- `markup`: HTML tags removed (`<span class="a-size-medium">Ear buds</span>` -> `Ear buds`);
- `whitespace`: runs of whitespace collapsed to one space, ends stripped;
- `placeholders`: values that stand for nothing (`nan`, `None`, `null`, `(no genres listed)`) made missing;
- `script_text`: scraped JavaScript (`var aPageStart = (new Date()).getTime();`) made missing: no usable text.
A missing field is the empty string; `missing_<field>` counts the items without that field after cleaning.
Interactions: `duplicate_interactions` counts exact (user, item, timestamp) repeats, dropped or kept by
`data.duplicates`.
"""

from __future__ import annotations

import html
import re

import pandas as pd

from harness.data.readers import TEXT_FIELDS

_ENTITY = re.compile(r"&(#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<!--.*?-->", re.S)
_SPACE = re.compile(r"\s+")
_SCRIPT = re.compile(
    r"\bvar\s+[A-Za-z_$][\w$]*\s*=|\bfunction\s*\(|\.getTime\s*\(|\bnew\s+Date\s*\(|"
    r"\b(?:window|document)\.[A-Za-z_]|\bP\.when\s*\(|=>\s*\{|\}\s*\)\s*;"
)
PLACEHOLDERS = {"nan", "none", "null", "(no genres listed)"}


def _unescape(text: str) -> str:
    for _ in range(3):  # `&amp;amp;` is escaped twice
        if not _ENTITY.search(text):
            break
        text = html.unescape(text)
    return text


def clean_items(items: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """items[item, title, brand, category] (strings, '' = missing) -> cleaned copy and the change counts."""
    counts = dict.fromkeys(["html_entities", "markup", "whitespace", "placeholders", "script_text"], 0)
    out = items.copy()
    for field in TEXT_FIELDS:
        values = out[field].astype(str)
        steps = [
            ("html_entities", lambda s: s.map(_unescape)),
            ("markup", lambda s: s.str.replace(_TAG, " ", regex=True).map(_unescape)),
            ("whitespace", lambda s: s.str.replace(_SPACE, " ", regex=True).str.strip()),
            ("placeholders", lambda s: s.mask(s.str.lower().isin(PLACEHOLDERS), "")),
            ("script_text", lambda s: s.mask(s.str.contains(_SCRIPT), "")),
        ]
        for name, step in steps:
            changed = step(values)
            counts[name] += int((changed != values).sum())
            values = changed
        out[field] = values
    counts.update({f"missing_{f}": int((out[f] == "").sum()) for f in TEXT_FIELDS})
    return out, counts


def duplicates(inter: pd.DataFrame, action: str) -> tuple[pd.DataFrame, int]:
    """Exact (user, item, timestamp) repeats: (interactions with them dropped, or as they were, and their count)."""
    repeat = inter.duplicated(["user", "item", "timestamp"], keep="first")
    n = int(repeat.sum())
    return (inter[~repeat] if action == "drop" else inter), n

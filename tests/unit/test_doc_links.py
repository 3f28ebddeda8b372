"""Every relative link in README.md and docs/ leads to a file of the repository, and every
`#anchor` to a heading of the file it names (as GitHub makes heading anchors)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
_CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def anchor_of(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _CODE_BLOCK.sub("", path.read_text(encoding="utf-8"))
    return {anchor_of(heading) for heading in _HEADING.findall(text)}


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def broken_links(path: Path) -> list[str]:
    text = _CODE_BLOCK.sub("", path.read_text(encoding="utf-8"))
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s) and mailto links are not ours to check offline
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or (ROOT not in linked.parents and linked != ROOT):
            broken.append(f"{target}: no such file")
        elif anchor and linked.is_file() and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    return broken


def test_the_anchor_rule_matches_githubs() -> None:
    assert anchor_of("Why not aiosfstream") == "why-not-aiosfstream"
    assert anchor_of("`endpoints[].retry`") == "endpointsretry"
    assert anchor_of("Admin HTTP (on `server.listen`, 127.0.0.1:8080 by default)") == (
        "admin-http-on-serverlisten-1270018080-by-default"
    )


def test_every_relative_link_leads_somewhere() -> None:
    assert len(documents()) >= 6
    broken = {
        str(path.relative_to(ROOT)): found for path in documents() if (found := broken_links(path))
    }
    assert broken == {}

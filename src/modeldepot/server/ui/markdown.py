"""Markdown from model cards rendered as safe HTML: CommonMark (markdown-it-py, raw HTML
off) and then an allow-list sanitiser (nh3, ammonia's rules): no script, no event handler, no
`javascript:` or `data:` link ever reaches the page, whatever a card, a file name or a finding
says."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

__all__ = ["render_markdown"]

_PARSER = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4",
         "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "strong", "table", "tbody", "td",
         "th", "thead", "tr", "ul"}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> str:
    """Safe HTML for `text` (a card's body, without its front matter)."""
    html = _PARSER.render(text)
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https",
                     "mailto"}, link_rel="noopener noreferrer nofollow")  # fmt: skip


def card_body(card: str) -> tuple[str, str]:
    """A card split into its YAML front matter and its Markdown body."""
    if card.startswith("---\n"):
        end = card.find("\n---", 4)
        if end >= 0:
            return card[4:end], card[end + 4 :].lstrip("\n")
    return "", card

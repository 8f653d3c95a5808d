"""Markdown to safe HTML for education cards (docs/clinical-record.md § Education cards).

Plain Python, no Django. Two steps, each enough on its own for the common attacks, so
that a mistake in one is caught by the other:

1. markdown-it-py in CommonMark mode with raw HTML switched off: a `<script>` or an
   `<img onerror=...>` typed into a card becomes visible text, not markup, and its link
   validator drops `javascript:`, `vbscript:`, `file:` and `data:` URLs;
2. nh3 (the Ammonia sanitiser) over the result with an allow-list: only the tags a card
   needs, only `href`/`title` on links and only http(s), mailto and tel URLs, no `style`,
   no event handlers, and `rel="noopener noreferrer"` on every link.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h2", "h3", "h4", "strong", "em", "ul", "ol", "li",
        "blockquote", "code", "pre", "a",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})

# Images are not in the allow-list (nh3 drops them): pictures belong to exercises.
# Headings start at h2: the app (and the dashboard's preview) owns the card's h1, its title.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def _shift_headings(html: str) -> str:
    for level in (5, 4, 3, 2, 1):
        html = html.replace(f"<h{level}>", f"<h{min(level + 1, 4)}>")
        html = html.replace(f"</h{level}>", f"</h{min(level + 1, 4)}>")
    return html


def render_markdown(source: str) -> str:
    """Sanitised HTML for `source`: safe to insert into the app's or a page's markup."""
    html = _shift_headings(_markdown.render(source))
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )

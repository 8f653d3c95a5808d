"""Markdown to safe HTML (programs/education/render.py): no database."""

from __future__ import annotations

import pytest

from programs.education.render import render_markdown


def test_it_renders_markdown() -> None:
    html = render_markdown("# Title\n\nSome **bold** and *soft* text.\n\n- one\n- two\n")
    assert "<h2>Title</h2>" in html  # the page's h1 is the card's title
    assert "<strong>bold</strong>" in html
    assert "<em>soft</em>" in html
    assert "<ul>\n<li>one</li>" in html


def test_it_shows_a_script_tag_as_text() -> None:
    html = render_markdown("Hello <script>alert(1)</script>")
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_it_escapes_raw_html_blocks() -> None:
    html = render_markdown('<div style="color:red" onclick="x()">hi</div>\n\n<iframe src="//x">')
    assert "<div" not in html
    assert "<iframe" not in html
    assert "onclick=" not in html.replace("&quot;", '"').split("&lt;")[0]


def test_it_drops_event_handlers_from_images() -> None:
    html = render_markdown("<img src=x onerror=alert(1)>")
    assert "<img" not in html
    # Inline image syntax is not allowed either: pictures belong to exercises.
    assert "<img" not in render_markdown('![x](https://example.org/x.png "t")')


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ],
)
def test_it_drops_dangerous_links(url: str) -> None:
    html = render_markdown(f"[click]({url}) and <{url}>")
    assert "href" not in html


def test_it_keeps_safe_links_with_noopener() -> None:
    html = render_markdown("[NHS](https://www.nhs.uk/) or [call](tel:999) or [mail](mailto:a@b.c)")
    assert '<a href="https://www.nhs.uk/" rel="noopener noreferrer">NHS</a>' in html
    assert 'href="tel:999"' in html
    assert 'href="mailto:a@b.c"' in html
    assert html.count('rel="noopener noreferrer"') == 3


def test_it_drops_attributes_that_are_not_allowed() -> None:
    # Even if the Markdown step let markup through, the sanitiser keeps only href/title.
    from programs.education import render

    cleaned = render.nh3.clean(
        '<a href="https://x.org" onclick="x()" style="color:red" target="_blank">x</a>'
        '<p onmouseover="y()">p</p><script>z()</script>',
        tags=set(render.ALLOWED_TAGS),
        attributes={tag: set(v) for tag, v in render.ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(render.URL_SCHEMES),
        link_rel="noopener noreferrer",
    )
    assert "onclick" not in cleaned
    assert "onmouseover" not in cleaned
    assert "style" not in cleaned
    assert "target" not in cleaned
    assert "z()" not in cleaned

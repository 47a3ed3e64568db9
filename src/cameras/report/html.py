"""Small HTML building blocks of the report page: escaping, relative links, tables, embedded JSON, the page shell.

Everything the page needs is inline (the CSS and JS templates of this package); images are referenced by paths
relative to the page, so the folder can be copied or opened over SSHFS. The page carries a Content Security Policy
that forbids every request but images from the page's own place, so a mistake can never reach the network, and
allows only the page's own inline style and script (by hash). The shell is filled in one pass (:func:`fill`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from ..io import to_jsonable

__all__ = [
    "csp",
    "embed_json",
    "esc",
    "fmt",
    "href",
    "kv_table",
    "page",
    "table",
    "template",
]


def csp(*, styles: Sequence[str] = (), scripts: Sequence[str] = ()) -> str:
    """The page's Content Security Policy: no request except images beside the page, and only the inline
    ``<style>`` and ``<script>`` elements whose exact text is given (each allowed by its SHA-256, so an inline
    script or event handler that reached the page by a missed escape does not run).

    Example:
        >>> policy = csp(scripts=["x"])
        >>> f"script-src '{sha256_source('x')}';" in policy, "style-src 'none'" in policy, "unsafe" in policy
        (True, True, False)
    """

    def sources(texts: Sequence[str]) -> str:
        return " ".join(f"'{sha256_source(t)}'" for t in texts) or "'none'"

    return (
        f"default-src 'none'; img-src 'self'; style-src {sources(styles)}; script-src {sources(scripts)}; "
        "base-uri 'none'; form-action 'none'; object-src 'none'"
    )


def sha256_source(text: str) -> str:
    """A CSP hash source for an inline element's text: ``sha256-`` + base64 of the SHA-256 of its UTF-8 bytes.

    Example:
        >>> sha256_source("")
        'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='
    """
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def esc(text: Any) -> str:
    """``text`` as HTML text or attribute value (``&<>"'`` escaped)."""
    return html.escape(str(text), quote=True)


def href(relative: str, *, up: bool = False) -> str:
    """A path relative to the page (``/``-separated) as a URL: each part percent-encoded, so names with spaces,
    ``#`` or ``?`` still point at the file. ``up=True`` allows ``..`` parts (a photo beside the run folder).

    Example:
        >>> href("report_files/a b#1.jpg"), href("../photos/a.jpg", up=True)
        ('report_files/a%20b%231.jpg', '../photos/a.jpg')
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or (".." in parts and not up):
        raise ValueError(f"not a path inside the run folder: {relative!r}")
    return "/".join(quote(p, safe="") for p in parts)


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table cell: ``digits`` significant digits, ``—`` for missing / NaN, text unchanged.

    Example:
        >>> fmt(0.123456), fmt(float("nan")), fmt(None), fmt(3), fmt(True), fmt("a")
        ('0.1235', '—', '—', '3', 'yes', 'a')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.{digits}g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
    numeric: Sequence[bool] | None = None,
    raw: bool = False,
) -> str:
    """An HTML table; cells are formatted with :func:`fmt` and escaped (``raw=True``: cells are HTML already)."""
    num = list(numeric) if numeric is not None else [False] * len(header)
    out = ['<div class="table-wrap"><table>']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f'<th scope="col">{esc(h)}</th>' for h in header) + "</tr></thead><tbody>")
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = ' class="num"' if i < len(num) and num[i] else ""
            cells.append(f"<td{cls}>{v if raw else esc(fmt(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def kv_table(pairs: Iterable[tuple[str, Any]], *, caption: str | None = None) -> str:
    """A two-column table of names and values (:func:`fmt`), for "what was run" and settings."""
    body = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(fmt(v))}</td></tr>' for k, v in pairs)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="table-wrap"><table class="kv">{cap}<tbody>{body}</tbody></table></div>'


def embed_json(element_id: str, obj: Any) -> str:
    """``<script type="application/json">`` holding ``obj`` as strict JSON, safe inside HTML: ``<``, ``>``, ``&``
    and the JavaScript line separators are written as ``\\u`` escapes, so no value can close the element.
    Read it back in the page with ``JSON.parse(document.getElementById(element_id).textContent)``."""
    try:  # the page's data is JSON already: skip the conversion, which costs as much as the dump on 1M cells
        text = json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = json.dumps(to_jsonable(obj), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    for char, code in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, code)
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def template(name: str) -> str:
    """The text of a template shipped with the package (``cameras/report/templates/NAME``)."""
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def fill(shell: str, values: dict[str, str]) -> str:
    """``shell`` with each ``{{name}}`` replaced by ``values[name]``, in ONE pass over the shell: a value is never
    scanned again, so text holding ``{{body}}`` (a folder's name in the title) stays that text.

    Example:
        >>> fill("<title>{{title}}</title>{{body}}", {"title": "{{body}}", "body": "<p>x</p>"})
        '<title>{{body}}</title><p>x</p>'

    Raises:
        KeyError: the shell names a slot ``values`` lacks.
    """
    return _SLOT.sub(lambda m: values[m.group(1)], shell)


def page(title: str, body: str, *, script: bool = False) -> str:
    """The whole page: the shell template with ``title``, the inline CSS, ``body`` and (``script=True``) the
    interactive JS of data-set runs. The Content Security Policy allows exactly this CSS and this JS (by hash)."""
    css = template("report.css")
    js = "\n" + template("report.js") if script else ""
    return fill(
        template("page.html"),
        {
            "csp": esc(csp(styles=[css], scripts=[js] if js else [])),
            "title": esc(title),
            "css": css,
            "script": f"<script>{js}</script>" if js else "",
            "body": body,
        },
    )

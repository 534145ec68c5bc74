"""One check for every URL the tool fetches from: recipes' `url:`, `mirrors=`, redirect targets.

requests speaks only http and https, and some malformed URLs make urllib.parse or urllib3
raise ValueError deep inside a download; checking up front turns each into a plain sentence.
"""
from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

SCHEMES = ("http", "https")


def url_problem(url: object, *, base: bool = False) -> str:
    """Why `url` cannot be downloaded from, or "" when it can. `base`: a mirror's folder URL."""
    if not isinstance(url, str) or not url:
        return "is empty"
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        return "contains whitespace or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily: raises for a port that is not a number or > 65535
    except ValueError as e:  # e.g. an unclosed IPv6 bracket
        return f"cannot be parsed ({e})"
    if parts.scheme.lower() not in SCHEMES:
        scheme = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"has {scheme}; only http:// and https:// can be downloaded"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    if not _host_ok(parts.hostname):
        return f"has an invalid host name {parts.hostname!r}"
    if base and (parts.query or parts.fragment):
        return "has a ?query or #fragment, so file names cannot be appended to it"
    return ""


def _host_ok(host: str) -> bool:
    """A host urllib3 can parse: an IP literal or labels of 1-63 characters (after IDNA)."""
    if ":" in host:  # IPv6 literal; urlsplit already checked the brackets
        return True
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True

"""Zoho data centres and the URL rules that keep credentials off the wire in clear text."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import attrs

from ._errors import InsecureURLError, InvalidInputError, UnknownDataCentreError

__all__ = ["DATA_CENTRES", "DataCentre", "Endpoints", "resolve_endpoints"]


@attrs.frozen
class DataCentre:
    """The two hosts of one Zoho data centre."""

    key: str
    api_url: str
    accounts_url: str


DATA_CENTRES: dict[str, DataCentre] = {
    dc.key: dc
    for dc in (
        DataCentre("us", "https://analyticsapi.zoho.com", "https://accounts.zoho.com"),
        DataCentre("eu", "https://analyticsapi.zoho.eu", "https://accounts.zoho.eu"),
        DataCentre("in", "https://analyticsapi.zoho.in", "https://accounts.zoho.in"),
        DataCentre("au", "https://analyticsapi.zoho.com.au", "https://accounts.zoho.com.au"),
        DataCentre("cn", "https://analyticsapi.zoho.com.cn", "https://accounts.zoho.com.cn"),
        DataCentre("jp", "https://analyticsapi.zoho.jp", "https://accounts.zoho.jp"),
        DataCentre("sa", "https://analyticsapi.zoho.sa", "https://accounts.zoho.sa"),
        DataCentre("ca", "https://analyticsapi.zohocloud.ca", "https://accounts.zohocloud.ca"),
    )
}


@attrs.frozen
class Endpoints:
    """Resolved base URLs (no trailing slash) for the Analytics API and the accounts server."""

    api_url: str
    accounts_url: str


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """Validate a base URL and return it without a trailing slash.

    ``https://`` is always accepted; ``http://`` only for loopback hosts (tests, a local
    FakeZoho), so a typo cannot send a client secret or token in clear text.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"{what} must be an http(s) URL with a host, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InsecureURLError(
            f"{what} {url!r} uses plain http:// to a non-loopback host; use https:// "
            "(plain http is allowed only for 127.0.0.1, ::1 and localhost)"
        )
    if parts.query or parts.fragment:
        raise InvalidInputError(f"{what} must not carry a query or fragment, got {url!r}")
    return url.rstrip("/")


def resolve_endpoints(
    data_center: str = "us", api_url: str | None = None, accounts_url: str | None = None
) -> Endpoints:
    """Pick the URLs: explicit overrides win over the data centre's.

    ``data_center`` is checked even when both URLs are given: a typo such as ``"mars"``
    must not pass silently only to bite once an override is removed.

    >>> resolve_endpoints("eu").api_url
    'https://analyticsapi.zoho.eu'
    """
    key = data_center.strip().lower() if isinstance(data_center, str) else data_center
    dc = DATA_CENTRES.get(key)
    if dc is None:
        valid = ", ".join(DATA_CENTRES)
        raise UnknownDataCentreError(
            f"unknown data centre {data_center!r}; valid keys are: {valid}"
        )
    api_url = api_url if api_url is not None else dc.api_url
    accounts_url = accounts_url if accounts_url is not None else dc.accounts_url
    return Endpoints(check_url(api_url, "api_url"), check_url(accounts_url, "accounts_url"))

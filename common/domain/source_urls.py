"""What an import's source URL may be, and which network addresses it may reach.

A person gives the import a URL: an archive on the web (https, http) or an
object in a bucket (gs). The rules here decide, without touching the network,
whether that URL is acceptable, which archive format its name announces, what
an archive's first bytes say it is, and whether an address a URL resolves to
is public. The last rule is what stops an import from being turned against
the machine it runs on (the metadata server at 169.254.169.254 above all) or
against the private network behind it; common/cloud/remote_source.py applies
it to every connection.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = ("https", "http", "gs")
ARCHIVE_FORMATS = ("zip", "tar", "tgz")
_FORMAT_ALIASES = {"tar.gz": "tgz", "gz": "tgz", "gzip": "tgz"}
_EXTENSIONS = ((".tar.gz", "tgz"), (".tgz", "tgz"), (".tar", "tar"), (".zip", "zip"))
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class InvalidSource(ValueError):
    """The URL cannot be an import's source; the message says what to change."""


@dataclass(frozen=True)
class SourceUrl:
    url: str
    scheme: str              # "https" | "http" | "gs"
    bucket: str | None       # gs only
    name: str | None         # gs only: the object's name
    archive: str | None      # "zip" | "tar" | "tgz"; None when neither the name nor the caller says

    def bucket_object(self) -> tuple[str, str] | None:
        """(bucket, object name) of a gs:// source; None for one read over the network."""
        if self.bucket is None or self.name is None:
            return None
        return self.bucket, self.name


def parse(url: str, archive_format: str | None = None) -> SourceUrl:
    """The URL checked and taken apart; `archive_format`, when given, overrides
    what the name's extension says."""
    _check_text(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidSource(f"{_shown(url)}: the URL must start with https://, http:// or gs:// "
                            f"(not {scheme + '://' if scheme else 'without a scheme'})")
    if "@" in parts.netloc:
        raise InvalidSource(f"{_shown(url)}: the URL carries a user name or password (user:pass@host); "
                            "imports read only URLs anyone may read: use a public or signed URL instead")
    chosen = _archive_format(archive_format)
    if scheme == "gs":
        bucket, name = _bucket_and_name(url)
        return SourceUrl(url, scheme, bucket, name, chosen or archive_of(name))
    _check_host(url, parts)
    return SourceUrl(url, scheme, None, None, chosen or archive_of(unquote(parts.path)))


def archive_of(path: str) -> str | None:
    """The archive format a path's extension announces, or None."""
    lowered = path.lower()
    return next((archive for extension, archive in _EXTENSIONS if lowered.endswith(extension)), None)


def sniff(head: bytes) -> str | None:
    """The archive format an archive's first bytes (512 suffice) say it is, or None."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip; the second: an empty one
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tgz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def is_allowed_address(address: str, allow_loopback: bool) -> bool:
    """Whether an import may connect to this IP address: only public ones, and
    loopback only where the local stack and tests allow it."""
    return refusal(address, allow_loopback) is None


def refusal(address: str, allow_loopback: bool) -> str | None:
    """Why an import may not connect to this address ("a link-local address"), or None when it may."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return refusal(str(ip.ipv4_mapped), allow_loopback)
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    reason = _kind_of_non_public(ip)
    if reason is None and isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour:
        # 2002::/16 carries an IPv4 address a relay would deliver to.
        return refusal(str(ip.sixtofour), allow_loopback=False)
    return reason


def _kind_of_non_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip in _CARRIER_GRADE_NAT, "a shared (carrier-grade NAT) address"),
        (ip in _UNIQUE_LOCAL, "a unique-local address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _check_text(url: str) -> None:
    if not isinstance(url, str) or not url:
        raise InvalidSource("give the archive's URL: https://…, http://… or gs://bucket/path")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidSource(f"the URL is {len(url)} characters long; at most {MAX_URL_LENGTH} are accepted")
    if any(character.isspace() or ord(character) < 32 or ord(character) == 127 for character in url):
        raise InvalidSource(f"{_shown(url)}: the URL contains spaces or control characters; "
                            "percent-encode them (a space is %20)")


def _check_host(url: str, parts: SplitResult) -> None:
    if not parts.hostname:
        raise InvalidSource(f"{_shown(url)}: the URL names no host (https://host/path)")
    try:
        _ = parts.port  # reading it raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise InvalidSource(f"{_shown(url)}: the URL's port is not a number from 0 to 65535") from None


def _bucket_and_name(url: str) -> tuple[str, str]:
    # Taken verbatim: an object's name may hold "?" and "#", which urlsplit would cut off.
    bucket, _, name = url[len("gs://"):].partition("/")
    if not bucket or not name:
        raise InvalidSource(f"{_shown(url)}: a gs:// URL names a bucket and an object: gs://bucket/path/archive.zip")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise InvalidSource(f"{_shown(url)}: {bucket!r} is not a bucket name "
                            "(3 to 222 lowercase letters, digits, dots, dashes and underscores)")
    return bucket, name


def _archive_format(archive_format: str | None) -> str | None:
    if archive_format is None:
        return None
    normalized = archive_format.strip().lower().lstrip(".")
    normalized = _FORMAT_ALIASES.get(normalized, normalized)
    if normalized not in ARCHIVE_FORMATS:
        raise InvalidSource(f"the archive format {archive_format!r} is not one of {', '.join(ARCHIVE_FORMATS)}")
    return normalized


def _shown(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "…"

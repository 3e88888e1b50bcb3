"""Optional login for `kb serve`: users from a file and/or a settings field; never public by
accident (a non-loopback address needs a login unless a settings flag allows it)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from pathlib import Path

from kb.settings import AppSettings


class ServeRefused(RuntimeError):
    """`kb serve` will not start with this configuration (the message says why and what to do)."""


def parse_users(text: str, separator: str = "\n") -> dict[str, str]:
    """`user:password` entries; blank entries and `#` comments are skipped."""
    users: dict[str, str] = {}
    for raw in text.split(separator):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, password = line.partition(":")
        if not colon or not name.strip() or not password:
            raise ServeRefused(f"bad login entry {name.strip()!r}: expected user:password")
        users[name.strip()] = password
    return users


def load_users(app: AppSettings) -> dict[str, str]:
    users: dict[str, str] = {}
    if app.auth_file:
        path = Path(app.auth_file)
        if not path.is_file():
            raise ServeRefused(f"auth file {path} does not exist")
        users |= parse_users(path.read_text(encoding="utf-8"))
    if app.users is not None:
        users |= parse_users(app.users.get_secret_value(), separator=",")
    return users


def checker(users: dict[str, str]) -> Callable[[str, str], bool]:
    def check(username: str, password: str) -> bool:
        expected = users.get(username)
        # compare_digest on bytes: constant time, and no error on non-ASCII passwords.
        return expected is not None and hmac.compare_digest(
            expected.encode("utf-8"), password.encode("utf-8")
        )

    return check


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(host: str, users: dict[str, str], app: AppSettings) -> None:
    if users or is_loopback(host) or app.allow_public_without_auth:
        return
    raise ServeRefused(
        f"refusing to serve on {host} without a login: set KB_APP__AUTH_FILE (lines of "
        "user:password) or KB_APP__USERS, or set KB_APP__ALLOW_PUBLIC_WITHOUT_AUTH=true to "
        "serve openly on purpose"
    )

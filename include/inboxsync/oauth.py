"""OAuth2 for IMAP: turn an inbox connection's refresh token into an access token for XOAUTH2.

Microsoft 365, Outlook.com and (for most accounts) Google refuse passwords over IMAP: the client
logs in with SASL XOAUTH2 and a short-lived access token, which it gets from the provider's token
endpoint with the refresh-token grant (RFC 6749 section 6). Everything an inbox needs lives in the
extras of its Airflow connection::

    auth            "oauth2" (anything else, or nothing, means password login)
    oauth_provider  "google", "microsoft" or "custom": presets for token_url and scope
    tenant          Microsoft only: directory (tenant) id or domain; default "common"
    token_url       the token endpoint (required for "custom", overrides a preset)
    client_id       the OAuth2 client (application) id
    client_secret   its secret; omitted for public clients          (secret)
    refresh_token   the long-lived grant the user gave               (secret)
    scope           overrides the preset scope
    access_token    a token to use as it is, when there is no refresh token (secret)

The presets are data only: nothing here contacts Google or Microsoft except through the URL a
connection names.

Secrets never appear in logs, exception messages or reprs: the dataclasses keep them out of
``repr``, every text that comes back from a token endpoint is redacted before it is shown, and
inside an Airflow task new tokens are registered with Airflow's secrets masker.

Rotation. A token endpoint may answer with a new refresh token (Microsoft does on every use;
Google does not). Microsoft does not revoke the old one: it stays valid until its own lifetime
ends (90 days after it was issued), so the stored token must be replaced within that time.
Outside an Airflow task (the ``inboxsync`` CLI, backfills, tests) the new token is written into
the connection in Airflow's metadata database at once. Inside a task that is not possible: the
Task SDK's execution API only reads connections (``GET /connections/{id}``) and direct database
access is blocked in task processes, so the task keeps using the stored token and logs a warning
(without the token) saying how to store a fresh one: run ``inboxsync inbox test NAME`` where the
metadata database is reachable, which refreshes and saves it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inboxsync.imap import InboxAuthError, InboxError, InboxUnreachable

log = logging.getLogger(__name__)

AUTH_MODES = ("password", "oauth2")
PROVIDERS = ("google", "microsoft", "custom")
SECRET_EXTRAS = ("client_secret", "refresh_token", "access_token")
DEFAULT_TENANT = "common"


@dataclass(frozen=True)
class ProviderPreset:
    """Where a provider's token endpoint is and which scope gives IMAP access."""

    token_url: str
    scope: str


PRESETS: dict[str, ProviderPreset] = {
    "google": ProviderPreset(
        token_url="https://oauth2.googleapis.com/token",
        scope="https://mail.google.com/",
    ),
    "microsoft": ProviderPreset(
        token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        scope="https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
    ),
}

# RFC 6749 section 5.2 error codes that mean the client registration is wrong.
_CLIENT_ERRORS = ("invalid_client", "unauthorized_client")
# How much of a token endpoint's error text to quote.
_MAX_DETAIL = 200


class OAuth2Error(InboxAuthError):
    """The token endpoint refused to issue an access token; someone has to act."""


@dataclass(frozen=True)
class OAuth2Settings:
    """How to get an access token for one inbox; secrets are kept out of ``repr``.

    Attributes:
        conn_id: The Airflow connection these settings came from (where a rotated refresh token
            is saved); None for settings not backed by a connection.
        provider: "google", "microsoft" or "custom".
        token_url: The token endpoint, presets resolved.
        client_id: The OAuth2 client id.
        scope: The scope asked for on refresh, presets resolved ("" to send none).
        client_secret: The client secret, None for a public client.
        refresh_token: The refresh token, None when only an access token is given.
        access_token: A ready access token, used when there is no refresh token.
        timeout: Seconds to wait for the token endpoint.
    """

    conn_id: str | None
    provider: str
    token_url: str | None
    client_id: str | None
    scope: str
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    @classmethod
    def from_extra(
        cls, conn_id: str | None, extra: Mapping[str, Any], *, timeout: float = 30.0
    ) -> OAuth2Settings:
        """Read the OAuth2 extras of a connection (see the module docstring), presets resolved.

        Raises:
            InboxError: The extras are incomplete or contradict each other; the message names
                what to set.
        """
        where = f"connection {conn_id}" if conn_id else "OAuth2 settings"
        provider = str(extra.get("oauth_provider") or "custom").lower()
        if provider not in PROVIDERS:
            raise InboxError(
                f"{where}: oauth_provider must be one of {', '.join(PROVIDERS)}, not {provider!r}"
            )
        preset = PRESETS.get(provider)
        tenant = str(extra.get("tenant") or DEFAULT_TENANT)
        token_url = _text(extra.get("token_url"))
        if token_url is None and preset is not None:
            token_url = preset.token_url.format(tenant=urllib.parse.quote(tenant, safe=""))
        scope = extra.get("scope")
        if scope is None:
            scope = preset.scope if preset is not None else ""
        settings = cls(
            conn_id=conn_id,
            provider=provider,
            token_url=token_url,
            client_id=_text(extra.get("client_id")),
            scope=str(scope),
            client_secret=_text(extra.get("client_secret")),
            refresh_token=_text(extra.get("refresh_token")),
            access_token=_text(extra.get("access_token")),
            timeout=timeout,
        )
        settings.check(where)
        return settings

    def check(self, where: str = "OAuth2 settings") -> None:
        """Raise InboxError naming what is missing for a token to be had."""
        if self.refresh_token is None:
            if self.access_token is None:
                raise InboxError(
                    f"{where}: auth is oauth2 but there is neither a refresh_token nor an "
                    "access_token: reconnect the inbox with `inboxsync inbox add NAME --auth "
                    "oauth2 ...`"
                )
            return
        missing = [
            name
            for name, value in (("token_url", self.token_url), ("client_id", self.client_id))
            if not value
        ]
        if missing:
            hint = " (or set oauth_provider to google or microsoft)" if not self.token_url else ""
            raise InboxError(f"{where}: the refresh-token flow needs {' and '.join(missing)}{hint}")
        scheme = urllib.parse.urlsplit(self.token_url).scheme
        if scheme not in ("https", "http"):
            raise InboxError(f"{where}: token_url must be an https:// URL, not {self.token_url!r}")

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values, for redaction."""
        return tuple(s for s in (self.client_secret, self.refresh_token, self.access_token) if s)


@dataclass(frozen=True)
class AccessToken:
    """An access token as issued; ``refresh_token`` is set only when the endpoint rotated it."""

    access_token: str = field(repr=False)
    expires_in: int | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None


def connection_extra(
    *,
    provider: str = "custom",
    token_url: str | None = None,
    client_id: str | None = None,
    tenant: str | None = None,
    scope: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
    access_token: str | None = None,
) -> dict[str, str]:
    """The connection extras for an OAuth2 inbox, checked as :meth:`OAuth2Settings.from_extra`
    would read them (so a connection that cannot work is never saved).

    Raises:
        InboxError: Something needed is missing or invalid.
    """
    values = {
        "auth": "oauth2",
        "oauth_provider": provider,
        "token_url": token_url,
        "tenant": tenant,
        "client_id": client_id,
        "scope": scope,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
        "access_token": access_token,
    }
    extra = {k: v for k, v in values.items() if v is not None and v != ""}
    if scope == "":
        extra["scope"] = ""  # explicitly none (the endpoint's default)
    OAuth2Settings.from_extra(None, extra)
    return extra


def get_access_token(cfg: OAuth2Settings) -> AccessToken:
    """An access token for XOAUTH2: refreshed at the token endpoint, or the one configured.

    A rotated refresh token is saved (outside tasks) or reported (inside them): see the module
    docstring.

    Raises:
        OAuth2Error: The endpoint refused the grant or the client (someone must act).
        InboxUnreachable: The endpoint could not be reached or failed (a retry may help).
        InboxError: The endpoint answered something that is not a token.
    """
    if cfg.refresh_token is None:
        if cfg.access_token is None:
            cfg.check()
        return AccessToken(cfg.access_token or "")
    token = refresh(cfg)
    if token.refresh_token and token.refresh_token != cfg.refresh_token:
        _store_rotated(cfg, token.refresh_token)
    return token


def refresh(cfg: OAuth2Settings) -> AccessToken:
    """POST the refresh-token grant to ``cfg.token_url`` and return the issued token.

    Raises:
        OAuth2Error, InboxUnreachable, InboxError: As :func:`get_access_token`.
    """
    cfg.check()
    form = {"grant_type": "refresh_token", "refresh_token": cfg.refresh_token or ""}
    form["client_id"] = cfg.client_id or ""
    if cfg.client_secret:
        form["client_secret"] = cfg.client_secret
    if cfg.scope:
        form["scope"] = cfg.scope
    request = urllib.request.Request(
        cfg.token_url or "",
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    url = cfg.token_url
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, _read_quietly(exc)
    except TimeoutError:
        raise InboxUnreachable(
            f"the OAuth2 token endpoint {url} did not answer within {cfg.timeout:.0f}s: check "
            "token_url and that this machine can reach it"
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason.strerror if isinstance(exc.reason, OSError) else exc.reason
        raise InboxUnreachable(
            f"cannot reach the OAuth2 token endpoint {url} ({_redact(str(reason), cfg)}): check "
            "token_url and that this machine can reach it"
        ) from None
    except OSError as exc:
        raise InboxUnreachable(
            f"the connection to the OAuth2 token endpoint {url} broke: {_redact(str(exc), cfg)}"
        ) from None
    payload = _json_object(body)
    if status != 200 or "error" in payload:
        raise _endpoint_error(cfg, status, payload, body)
    access = payload.get("access_token")
    if not isinstance(access, str) or not access:
        raise InboxError(
            f"the OAuth2 token endpoint {url} answered HTTP {status} without an access_token: "
            "check token_url (it must be the provider's token endpoint)"
        )
    token_type = str(payload.get("token_type", "Bearer"))
    if token_type.lower() != "bearer":
        raise InboxError(
            f"the OAuth2 token endpoint {url} issued a {token_type!r} token; XOAUTH2 needs a "
            "Bearer token"
        )
    rotated = payload.get("refresh_token")
    rotated = rotated if isinstance(rotated, str) and rotated else None
    _mask(access, rotated)
    return AccessToken(
        access_token=access,
        expires_in=_int_or_none(payload.get("expires_in")),
        refresh_token=rotated,
        scope=payload.get("scope") if isinstance(payload.get("scope"), str) else None,
    )


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _redact(text: str, cfg: OAuth2Settings) -> str:
    return redact(text, cfg.secrets)


def _endpoint_error(
    cfg: OAuth2Settings, status: int, payload: dict[str, Any], body: bytes
) -> InboxError:
    """The exception for a token endpoint's refusal (RFC 6749 section 5.2), secrets redacted."""
    url = cfg.token_url
    code = str(payload.get("error") or "")
    description = payload.get("error_description") or ""
    if not code and not description:
        description = body.decode("utf-8", "replace").strip()
    said = _redact(f"{code}: {description}" if code and description else code or description, cfg)
    said = said[:_MAX_DETAIL] + ("..." if len(said) > _MAX_DETAIL else "")
    detail = f"(token endpoint {url} said HTTP {status} {said})"
    if code == "invalid_grant":
        return OAuth2Error(
            "the refresh token was revoked or expired: reconnect the inbox (`inboxsync inbox add "
            f"NAME --auth oauth2 ...` with a new refresh token) {detail}"
        )
    if code in _CLIENT_ERRORS:
        tenant = " and the tenant" if cfg.provider == "microsoft" else ""
        return OAuth2Error(
            f"the token endpoint refused the OAuth2 client {cfg.client_id!r}: check client_id, "
            f"client_secret{tenant} in the inbox's connection {detail}"
        )
    if code == "invalid_scope":
        return OAuth2Error(
            f"the token endpoint refused the scope {cfg.scope!r}: remove the scope extra to use "
            f"the {cfg.provider} preset, or grant the client that scope {detail}"
        )
    if status >= 500 or status == 429:
        return InboxUnreachable(f"the OAuth2 token endpoint failed; try again later {detail}")
    if status == 404:
        return OAuth2Error(f"no OAuth2 token endpoint at {url}: check token_url {detail}")
    return OAuth2Error(f"the OAuth2 token endpoint refused to issue a token {detail}")


def _store_rotated(cfg: OAuth2Settings, new_refresh_token: str) -> None:
    """Keep the refresh token the endpoint rotated to (see the module docstring)."""
    from inboxsync.connections import _in_task, update_connection_extra

    where = f"connection {cfg.conn_id}" if cfg.conn_id else "these OAuth2 settings"
    if cfg.conn_id is None:
        log.warning("%s: the token endpoint rotated the refresh token; nowhere to save it", where)
        return
    if _in_task():
        log.warning(
            "%s: the token endpoint issued a new refresh token, but an Airflow task cannot "
            "update connections (the Task SDK only reads them); the stored one stays valid until "
            "it expires (Microsoft: 90 days after it was issued). Run `inboxsync inbox test "
            "NAME` for this inbox where Airflow's metadata database is reachable to save a fresh "
            "one, or keep the connection in a secrets backend that you refresh",
            where,
        )
        return
    if update_connection_extra(cfg.conn_id, {"refresh_token": new_refresh_token}):
        log.info("%s: saved the rotated refresh token", where)
    else:
        log.warning(
            "%s: the token endpoint rotated the refresh token, but the connection is not in "
            "Airflow's metadata database (environment variable or secrets backend): update it "
            "there before the stored token expires",
            where,
        )


def _mask(*secrets: str | None) -> None:
    """Register fresh tokens with Airflow's secrets masker (task logs redact them)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:
        return
    for secret in secrets:
        if secret:
            with contextlib.suppress(Exception):
                mask_secret(secret)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except OSError:
        return b""


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None

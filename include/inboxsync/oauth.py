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
Google does not). Microsoft does not revoke the old one, but each token expires 90 days after it
was issued: the token stored when the inbox was connected stops working then, so every rotated
one must be kept. Outside an Airflow task (the ``inboxsync`` CLI, backfills, tests) the new token
is written into the connection in Airflow's metadata database. A task cannot do that (the Task
SDK's execution API only reads connections, and direct database access is blocked in task
processes), but it may write Variables: the task keeps the new token in the Variable
``inboxsync_rotated_refresh_token_<conn_id>`` (Fernet-encrypted like connections; Airflow hides
values whose key names a token), together with a SHA-256 of the connection's own refresh token.
Every later refresh, in a task or not, uses the Variable's token while the connection still holds
that one; a connection given a new token (the inbox reconnected) makes the Variable stale, and
it is ignored. The CLI, saving a rotation into the connection, deletes the Variable; so does
``inbox remove``. A connection kept outside the metadata database (an environment variable or a
secrets backend) has its rotations kept in the Variable too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
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

    The refresh uses the latest rotated refresh token that was kept for the connection, and keeps
    the one the endpoint rotates to: see the module docstring.

    Raises:
        OAuth2Error: The endpoint refused the grant or the client (someone must act).
        InboxUnreachable: The endpoint could not be reached or failed (a retry may help).
        InboxError: The endpoint answered something that is not a token.
    """
    if cfg.refresh_token is None:
        if cfg.access_token is None:
            cfg.check()
        return AccessToken(cfg.access_token or "")
    stored = cfg.refresh_token
    cfg = _with_kept_rotation(cfg)
    token = refresh(cfg)
    if token.refresh_token and token.refresh_token != cfg.refresh_token:
        _store_rotated(cfg, token.refresh_token, stored)
    return token


def rotated_token_variable(conn_id: str) -> str:
    """The Airflow Variable that keeps the rotated refresh token of connection ``conn_id``."""
    return f"inboxsync_rotated_refresh_token_{conn_id}"


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


def _with_kept_rotation(cfg: OAuth2Settings) -> OAuth2Settings:
    """The settings with the refresh token kept in the connection's Variable, when it rotated
    from the token the connection holds now; else the settings unchanged."""
    from inboxsync.connections import get_variable

    if cfg.conn_id is None or cfg.refresh_token is None:
        return cfg
    key = rotated_token_variable(cfg.conn_id)
    try:
        kept = get_variable(key)
    except Exception as exc:  # no metadata database (a CLI with connections from the environment)
        log.debug(
            "connection %s: cannot read the Variable %s (%s)", cfg.conn_id, key, type(exc).__name__
        )
        return cfg
    if not kept:
        return cfg
    try:
        record = json.loads(kept)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("refresh_token"), str):
        log.warning("connection %s: the Variable %s is not a kept token; ignored", cfg.conn_id, key)
        return cfg
    if record.get("replaces") != _digest(cfg.refresh_token):
        return cfg  # the connection was given a new token since: it wins
    _mask(record["refresh_token"])
    return dataclasses.replace(cfg, refresh_token=record["refresh_token"])


def _store_rotated(cfg: OAuth2Settings, new_refresh_token: str, stored: str) -> None:
    """Keep the refresh token the endpoint rotated to (see the module docstring).

    Args:
        cfg: The settings the refresh used.
        new_refresh_token: The token the endpoint issued.
        stored: The refresh token the connection itself holds.
    """
    from inboxsync.connections import (
        _in_task,
        delete_variable,
        set_variable,
        update_connection_extra,
    )

    where = f"connection {cfg.conn_id}" if cfg.conn_id else "these OAuth2 settings"
    if cfg.conn_id is None:
        log.warning("%s: the token endpoint rotated the refresh token; nowhere to save it", where)
        return
    key = rotated_token_variable(cfg.conn_id)
    in_task = _in_task()
    if not in_task and update_connection_extra(cfg.conn_id, {"refresh_token": new_refresh_token}):
        log.info("%s: saved the rotated refresh token", where)
        with contextlib.suppress(Exception):  # the connection holds the latest token now
            delete_variable(key)
        return
    record = json.dumps({"replaces": _digest(stored), "refresh_token": new_refresh_token})
    description = f"The refresh token that connection {cfg.conn_id} rotated to (inboxsync.oauth)"
    try:
        set_variable(key, record, description)
    except Exception as exc:
        # The exception's text is not shown: a database error can quote the statement's values.
        log.warning(
            "%s: the token endpoint rotated the refresh token, and it could not be kept in the "
            "Airflow Variable %s (%s); the stored one stays valid until it expires (Microsoft: "
            "90 days after it was issued): run `inboxsync inbox test NAME` for this inbox where "
            "Airflow's metadata database is reachable to save a fresh one",
            where,
            key,
            type(exc).__name__,
        )
        return
    log.info(
        "%s: kept the rotated refresh token in the Airflow Variable %s (%s)",
        where,
        key,
        "a task cannot update connections"
        if in_task
        else "the connection is not in Airflow's metadata database",
    )


def _digest(refresh_token: str) -> str:
    """SHA-256 of a refresh token, hex: names the token without holding it."""
    return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


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

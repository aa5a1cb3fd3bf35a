"""HTTPS for the server: the uvicorn options of the TLS settings, checked before the start
so that a missing file or a key that does not match its certificate stops the server with
one line saying which, rather than a trace from deep inside uvicorn."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from cls_shipper.errors import SettingsError
from cls_shipper.settings import Settings


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's
    # password, and a server started by a supervisor would hang there.
    raise _EncryptedKey


def _readable(path: Path, what: str) -> str:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SettingsError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    return str(path)


def check_tls(settings: Settings) -> None:
    """Load the certificate, key and CA as the server will; SettingsError saying what is
    wrong otherwise."""
    if settings.ssl_certfile is None:
        return
    cert = _readable(settings.ssl_certfile, "certificate (ssl_certfile)")
    key = _readable(settings.ssl_keyfile, "key (ssl_keyfile)") if settings.ssl_keyfile else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise SettingsError(f"the key in {key or cert} is encrypted; give it unencrypted "
                            "(readable by the server's user only)") from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise SettingsError(f"the key {key or cert} does not match the certificate "
                                f"{cert}") from None
        where = f"{cert} and {key}" if key else cert
        raise SettingsError(f"cannot load the certificate and key from {where}: they must be "
                            f"PEM (certificate, then the key unless ssl_keyfile is given): "
                            f"{exc.reason or exc}") from None
    if settings.ssl_ca_certs is not None:
        ca = _readable(settings.ssl_ca_certs, "client CA file (ssl_ca_certs)")
        try:
            context.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise SettingsError(f"cannot load CA certificates from {ca}: it must hold PEM "
                                f"certificates ({exc.reason or exc})") from None


def tls_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of uvicorn.Config for the TLS settings (none without a
    certificate). With ssl_ca_certs a client without a certificate signed by one of those
    CAs fails the handshake."""
    if settings.ssl_certfile is None:
        return {}
    check_tls(settings)
    return {
        "ssl_certfile": str(settings.ssl_certfile),
        "ssl_keyfile": str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        "ssl_ca_certs": str(settings.ssl_ca_certs) if settings.ssl_ca_certs else None,
        "ssl_cert_reqs": ssl.CERT_REQUIRED if settings.ssl_ca_certs else ssl.CERT_NONE,
    }

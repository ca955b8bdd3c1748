"""One logged-in PKCS#11 session per (module, token) in this process.

PKCS#11 keeps login state per application and token: a second ``C_Login``
fails with ``CKR_USER_ALREADY_LOGGED_IN`` and any ``C_Logout`` logs every
session of the process out. So all users of one token share one session,
counted by reference and logged out with the last one.

Rules:
- Every call on a shared session runs on that link's single worker thread:
  python-pkcs11 sessions are not thread-safe, and the event loop never blocks.
- Joining an existing login re-checks the PIN against a keyed digest of the
  PIN that logged in (the token would not check it again): a wrong PIN never
  rides on someone else's login. The PIN itself is not kept.
- Errors name the module path and token label, never the PIN.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import pkcs11
from pkcs11 import exceptions as p11e

from kms_client.errors import RootAuthError, RootError, RootUnavailable

log = logging.getLogger(__name__)
_PIN_MAC_KEY: Final = os.urandom(32)


class TokenLink:
    """A logged-in read-write session and the one thread allowed to use it."""

    def __init__(self, key: tuple[str, str], session: pkcs11.Session, pin_mac: bytes) -> None:
        self.key = key
        self.session = session
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokengate-pkcs11")
        self._pin_mac = pin_mac
        self._refs = 1


_links: dict[tuple[str, str], TokenLink] = {}
_lock = threading.Lock()


def error_name(e: BaseException) -> str:
    """The exception's class name: safe to log (PKCS#11 errors carry no secrets there)."""
    return type(e).__name__


def acquire(module_path: str, token_label: str, pin: str) -> TokenLink:
    """Log in to the token or join this process's login; blocking, call from a thread."""
    pin_mac = hmac.digest(_PIN_MAC_KEY, pin.encode(), "sha256")
    key = (module_path, token_label)
    where = f"token '{token_label}'"
    with _lock:
        link = _links.get(key)
        if link is not None:
            if not hmac.compare_digest(link._pin_mac, pin_mac):
                raise RootAuthError(f"kms: pkcs11: wrong pin for {where}")
            link._refs += 1
            return link
        try:
            lib = pkcs11.lib(module_path)
        except (OSError, RuntimeError) as e:
            raise RootUnavailable(f"kms: pkcs11: cannot load module {module_path}") from e
        try:
            token = lib.get_token(token_label=token_label)
            session = token.open(rw=True, user_pin=pin)
        except p11e.NoSuchToken as e:
            raise RootUnavailable(f"kms: pkcs11: no {where} in {module_path}") from e
        except p11e.MultipleTokensReturned as e:
            raise RootError(f"kms: pkcs11: several tokens labelled '{token_label}'") from e
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as e:
            raise RootAuthError(f"kms: pkcs11: wrong pin for {where}") from e
        except (p11e.PinLocked, p11e.PinExpired) as e:
            raise RootAuthError(f"kms: pkcs11: pin locked or expired for {where}") from e
        except p11e.PKCS11Error as e:
            raise RootUnavailable(f"kms: pkcs11: cannot log in to {where} ({error_name(e)})") from e
        link = TokenLink(key, session, pin_mac)
        _links[key] = link
        return link


def release(link: TokenLink) -> None:
    """Drop one reference; the last one logs out and stops the thread. Blocking."""
    with _lock:
        link._refs -= 1
        if link._refs > 0:
            return
        if _links.get(link.key) is link:
            del _links[link.key]
    try:
        link.executor.submit(link.session.close).result()
    except p11e.PKCS11Error as e:
        # The token is gone already: there is no login left to end.
        log.warning("kms: pkcs11: logout from token '%s' failed (%s)", link.key[1], error_name(e))
    finally:
        link.executor.shutdown(wait=True)

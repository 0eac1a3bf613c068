"""OpenAlgo's broker-session store, reduced to what a streaming adapter reads: get_auth_token.

Reads the `auth` table of OpenAlgo's database (DATABASE_URL: `sqlite:///relative/to/cwd.db` or
`sqlite:////absolute.db`) and decrypts the `auth` column the way OpenAlgo does: Fernet with the key
urlsafe_b64(PBKDF2-HMAC-SHA256(API_KEY_PEPPER, salt, 100 000 iterations, 32 bytes)), where the salt
is FERNET_SALT's bytes when it is at least 32 hex digits, else OpenAlgo's legacy static salt.
Like OpenAlgo, importing it fails without a pepper of at least 32 characters, and found tokens are
cached per user (`auth_cache`, key `auth-<user>`) until bypass_cache or a deletion.
"""
import base64
import os
import sqlite3

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from utils.logging import get_logger

logger = get_logger(__name__)

DATABASE_URL = os.getenv("DATABASE_URL")

_pepper_value = os.getenv("API_KEY_PEPPER")
if not _pepper_value:
    raise RuntimeError("CRITICAL: API_KEY_PEPPER environment variable is not set.")
if len(_pepper_value) < 32:
    raise RuntimeError(f"CRITICAL: API_KEY_PEPPER must be at least 32 characters (got {len(_pepper_value)}).")
PEPPER = _pepper_value


def _resolve_fernet_salt() -> bytes:
    raw = (os.getenv("FERNET_SALT") or "").strip()
    if len(raw) >= 32:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    return b"openalgo_static_salt"


def get_encryption_key() -> Fernet:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=_resolve_fernet_salt(), iterations=100000)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(PEPPER.encode())))


fernet = get_encryption_key()

# OpenAlgo keeps these in cachetools TTLCaches; plain dicts are enough here.
auth_cache = {}
feed_token_cache = {}


def _database_path():
    url = DATABASE_URL or ""
    if not url.startswith("sqlite:///"):
        raise RuntimeError(f"this stand-in only reads sqlite databases, not {url!r}")
    return url[len("sqlite:///"):]  # "sqlite:////abs" leaves "/abs"; "sqlite:///rel" leaves "rel"


def decrypt_token(encrypted_token):
    if not encrypted_token:
        return ""
    try:
        return fernet.decrypt(encrypted_token.encode()).decode()
    except InvalidToken:
        logger.error("Error decrypting token: the row was encrypted under another key")
        return None


def get_auth_token_dbquery(name):
    """The user's row as a dict, or None when there is none or it is revoked."""
    if not name:
        return None
    try:
        db = sqlite3.connect(_database_path())
        try:
            row = db.execute("SELECT auth, feed_token, broker, is_revoked FROM auth WHERE name = ?", (name,)).fetchone()
        finally:
            db.close()
    except Exception as e:
        logger.exception(f"Error while querying the database for auth token: {e}")
        return None
    if row is None or row[3]:
        logger.warning(f"No valid auth token found for name '{name}'.")
        return None
    return {"auth": row[0], "feed_token": row[1], "broker": row[2], "is_revoked": bool(row[3])}


def get_auth_token(name, bypass_cache: bool = False):
    """The user's decrypted broker token, or None if there is no row, it is revoked or empty."""
    if not name:
        return None
    cache_key = f"auth-{name}"
    if bypass_cache:
        auth_cache.pop(cache_key, None)
    row = auth_cache.get(cache_key)
    if row is None:
        row = get_auth_token_dbquery(name)
        if row is None:
            return None
        auth_cache[cache_key] = row
    return decrypt_token(row["auth"]) or None


def get_auth_token_fresh(name):
    return get_auth_token(name, bypass_cache=True)

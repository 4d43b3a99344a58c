#!/usr/bin/env python3
"""A Flinks/finhook webhook receiver in plain Python (standard library only).

It does what a receiver must: verify the signature (Standard Webhooks when its headers are
there, else Flinks' `flinks-authenticity-key`), refuse anything unsigned, stale or altered
with 401, store each callback durably before answering 200, store a repeated delivery once,
and conciliate the KYC, GetAccountsDetail and Investments callbacks of one LoginId, in
whatever order they come.

    FINHOOK_SECRET=whsec_... python3 receiver.py [--port 8000] [--database receiver.db]

GET /logins/<LoginId> shows what was stored of a login. finhook's CI runs this file against
`finhook serve` and `finhook probe` (crates/finhook/tests/it/examples.rs), so it stays right.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300  # how far webhook-timestamp may be from this clock
MAX_BODY_BYTES = 32 * 1024 * 1024


def verify(secret, headers, body):
    """Returns None when the body is signed by `secret`, else why not."""
    signature = headers.get("webhook-signature")
    if signature is not None:
        webhook_id = headers.get("webhook-id") or ""
        timestamp = headers.get("webhook-timestamp") or ""
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            return "webhook-timestamp is missing or too far from now"
        # The secret is whsec_ + base64 of the key.
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        # Several `v1,<signature>` entries during a rotation: any may match.
        for entry in signature.split(" "):
            version, _, value = entry.partition(",")
            if version == "v1" and hmac.compare_digest(value, expected):
                return None
        return "no webhook-signature entry matches"
    flinks = headers.get("flinks-authenticity-key")
    if flinks is not None:
        # Flinks: base64(HMAC-SHA256(key = the secret string's UTF-8 bytes, the body)).
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        return None if hmac.compare_digest(flinks, expected) else "flinks-authenticity-key does not match"
    return "no signature"


class Store:
    """Callbacks in SQLite, each committed before the 200 (synchronous=FULL)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS callbacks (dedupe_key TEXT PRIMARY KEY, login_id TEXT NOT NULL,"
            " response_type TEXT NOT NULL, webhook_id TEXT, body BLOB NOT NULL, received_at REAL NOT NULL)"
        )
        self.lock = threading.Lock()

    def insert(self, dedupe_key, login_id, response_type, webhook_id, body):
        """Stores once per dedupe key; True when it was new."""
        with self.lock:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO callbacks VALUES (?, ?, ?, ?, ?, ?)",
                (dedupe_key, login_id, response_type, webhook_id, body, time.time()),
            )
            return cursor.rowcount == 1

    def login(self, login_id):
        with self.lock:
            rows = self.db.execute(
                "SELECT response_type, webhook_id, body FROM callbacks WHERE login_id = ? ORDER BY received_at",
                (login_id,),
            ).fetchall()
        view = {"login_id": login_id, "kyc": None, "accounts_detail": None, "investments": None, "callbacks": []}
        slot = {"KYC": "kyc", "GetAccountsDetail": "accounts_detail", "Investments": "investments"}
        for response_type, webhook_id, body in rows:
            # The latest of each type wins (a refresh replaces older data).
            view[slot[response_type]] = json.loads(body)
            view["callbacks"].append({"response_type": response_type, "webhook_id": webhook_id})
        return view


def handler(secret, store):
    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, text):
            payload = text.encode()
            self.send_response(status)
            self.send_header("content-type", "application/json" if text.startswith("{") else "text/plain")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                return self.answer(413, "too large")
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            problem = verify(secret, headers, body)
            if problem:
                return self.answer(401, problem)
            try:
                callback = json.loads(body)
                login_id = callback["Login"]["Id"]
                response_type = callback["ResponseType"]
            except (ValueError, KeyError, TypeError):
                return self.answer(400, "not a Flinks callback (ResponseType and Login.Id are needed)")
            if response_type not in ("KYC", "GetAccountsDetail", "Investments"):
                return self.answer(400, "unknown ResponseType")
            webhook_id = headers.get("webhook-id")
            # finhook's webhook-id names the message; real Flinks sends none, so fall back
            # on what identifies a callback there.
            dedupe_key = webhook_id or f"{login_id}/{response_type}/{callback.get('RequestId')}"
            store.insert(dedupe_key, login_id, response_type, webhook_id, body)
            self.answer(200, "ok")

        def do_GET(self):
            prefix = "/logins/"
            if not self.path.startswith(prefix):
                return self.answer(404, "POST callbacks to any path; GET /logins/<LoginId>")
            self.answer(200, json.dumps(store.login(self.path[len(prefix):])))

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--database", default="receiver.db", help="the SQLite file callbacks are stored in")
    arguments = parser.parse_args()
    secret = os.environ.get("FINHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        raise SystemExit("set FINHOOK_SECRET to the endpoint's signing secret (whsec_...)")
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), handler(secret, Store(arguments.database)))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

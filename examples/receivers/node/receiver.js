#!/usr/bin/env node
// A Flinks/finhook webhook receiver in plain Node.js (no dependencies).
//
// It does what a receiver must: verify the signature (Standard Webhooks when its headers are
// there, else Flinks' `flinks-authenticity-key`), refuse anything unsigned, stale or altered
// with 401, store each callback durably (appended and fsynced) before answering 200, store a
// repeated delivery once, and conciliate the KYC, GetAccountsDetail and Investments callbacks
// of one LoginId, in whatever order they come.
//
//     FINHOOK_SECRET=whsec_... node receiver.js [--port 8000] [--database receiver.jsonl]
//
// GET /logins/<LoginId> shows what was stored of a login. finhook's CI runs this file against
// `finhook serve` and `finhook probe` (crates/finhook/tests/it/examples.rs), so it stays right.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');

const TOLERANCE_SECONDS = 300; // how far webhook-timestamp may be from this clock
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const TYPES = { KYC: 'kyc', GetAccountsDetail: 'accounts_detail', Investments: 'investments' };

function same(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// Returns null when the body is signed by `secret`, else why not.
function verify(secret, headers, body) {
  const signature = headers['webhook-signature'];
  if (signature !== undefined) {
    const id = headers['webhook-id'] || '';
    const timestamp = headers['webhook-timestamp'] || '';
    if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
      return 'webhook-timestamp is missing or too far from now';
    }
    // The secret is whsec_ + base64 of the key.
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = crypto
      .createHmac('sha256', key)
      .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]))
      .digest('base64');
    // Several `v1,<signature>` entries during a rotation: any may match.
    const ok = signature.split(' ').some((entry) => {
      const [version, value] = entry.split(',', 2);
      return version === 'v1' && value !== undefined && same(value, expected);
    });
    return ok ? null : 'no webhook-signature entry matches';
  }
  const flinks = headers['flinks-authenticity-key'];
  if (flinks !== undefined) {
    // Flinks: base64(HMAC-SHA256(key = the secret string's UTF-8 bytes, the body)).
    const expected = crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('base64');
    return same(flinks, expected) ? null : 'flinks-authenticity-key does not match';
  }
  return 'no signature';
}

// Callbacks as JSON lines, each fsynced before the 200; read back at start.
class Store {
  constructor(path) {
    this.byKey = new Map();
    if (fs.existsSync(path)) {
      for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
        if (line) {
          const record = JSON.parse(line);
          this.byKey.set(record.dedupe_key, record);
        }
      }
    }
    this.fd = fs.openSync(path, 'a');
  }

  // Stores once per dedupe key; true when it was new.
  insert(record) {
    if (this.byKey.has(record.dedupe_key)) return false;
    fs.writeSync(this.fd, `${JSON.stringify(record)}\n`);
    fs.fsyncSync(this.fd);
    this.byKey.set(record.dedupe_key, record);
    return true;
  }

  login(loginId) {
    const view = { login_id: loginId, kyc: null, accounts_detail: null, investments: null, callbacks: [] };
    for (const record of this.byKey.values()) {
      if (record.login_id !== loginId) continue;
      // The latest of each type wins (a refresh replaces older data).
      view[TYPES[record.response_type]] = record.callback;
      view.callbacks.push({ response_type: record.response_type, webhook_id: record.webhook_id });
    }
    return view;
  }
}

function main() {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : fallback;
  };
  const secret = process.env.FINHOOK_SECRET || '';
  if (!secret.startsWith('whsec_')) {
    console.error("set FINHOOK_SECRET to the endpoint's signing secret (whsec_...)");
    process.exit(2);
  }
  const store = new Store(option('--database', 'receiver.jsonl'));
  const answer = (res, status, text) => {
    res.writeHead(status, { 'content-type': text.startsWith('{') ? 'application/json' : 'text/plain' });
    res.end(text);
  };
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      if (!req.url.startsWith('/logins/')) return answer(res, 404, 'POST callbacks to any path; GET /logins/<LoginId>');
      return answer(res, 200, JSON.stringify(store.login(decodeURIComponent(req.url.slice('/logins/'.length)))));
    }
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return answer(res, 413, 'too large');
      const body = Buffer.concat(chunks);
      const problem = verify(secret, req.headers, body);
      if (problem) return answer(res, 401, problem);
      let callback;
      try {
        callback = JSON.parse(body.toString('utf8'));
      } catch {
        return answer(res, 400, 'not JSON');
      }
      const loginId = callback && callback.Login && callback.Login.Id;
      const responseType = callback && callback.ResponseType;
      if (typeof loginId !== 'string' || !(responseType in TYPES)) {
        return answer(res, 400, 'not a Flinks callback (ResponseType and Login.Id are needed)');
      }
      const webhookId = req.headers['webhook-id'] || null;
      // finhook's webhook-id names the message; real Flinks sends none, so fall back on what
      // identifies a callback there.
      const dedupeKey = webhookId || `${loginId}/${responseType}/${callback.RequestId}`;
      store.insert({ dedupe_key: dedupeKey, login_id: loginId, response_type: responseType, webhook_id: webhookId, callback });
      return answer(res, 200, 'ok');
    });
  });
  server.listen(Number(option('--port', '8000')), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
}

main();

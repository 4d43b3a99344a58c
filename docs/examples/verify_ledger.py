#!/usr/bin/env python3
"""Verify a finhook delivery ledger export with nothing but Python's standard library.

    python3 verify_ledger.py ledger.jsonl [--head HASH]

A second implementation of docs/CONTRACT.md's "Delivery ledger" definition, independent of
finhook's Rust code (the test suite runs it against real exports): each entry's hash is
SHA-256 over the previous entry's 32-byte hash followed by the entry's fields as
netstrings. Exit 0 if the chain holds, 1 naming the first broken link.
"""
import hashlib
import json
import sys

FIELDS = ["instance", "seq", "attempt_id", "message_id", "body_sha256", "endpoint_url",
          "attempt", "attempted_at", "status", "error_class"]


def netstring(text):
    data = text.encode("utf-8")
    return str(len(data)).encode() + b":" + data + b","


def canonical(entry):
    out = netstring("finhook-ledger-v1")
    for field in FIELDS:
        value = entry.get(field)
        out += netstring("" if value is None else str(value))
    return out


def verify(lines, expected_head=None):
    """None if the chain holds, else the first broken link."""
    return check(lines, expected_head)[0]


def check(lines, expected_head=None):
    """(problem or None, a one-line summary of the chain when it holds)."""
    previous = None
    count = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        prev = bytes.fromhex(entry["prev_hash"])
        if previous is None:
            if entry["seq"] == 1 and prev != bytes(32):
                return "line %d: seq 1 does not start from the genesis hash" % number, None
        else:
            if entry["instance"] != previous["instance"]:
                return "line %d: another instance's entry" % number, None
            if entry["seq"] != previous["seq"] + 1:
                return "line %d: seq %d follows seq %d" % (number, entry["seq"], previous["seq"]), None
            if entry["prev_hash"] != previous["hash"]:
                return "line %d: prev_hash is not the hash of the entry before it" % number, None
        if hashlib.sha256(prev + canonical(entry)).hexdigest() != entry["hash"]:
            return "line %d: the hash does not match the entry's contents" % number, None
        previous = entry
        count += 1
    if previous is None:
        return "the chain is empty", None
    if expected_head and expected_head.lower() != previous["hash"]:
        return "the chain ends at %s, not at %s" % (previous["hash"], expected_head), None
    return None, "ok: %d entries, seq %d to %d, head %s" % (count, previous["seq"] - count + 1, previous["seq"], previous["hash"])


def main():
    args = sys.argv[1:]
    head = None
    if "--head" in args:
        at = args.index("--head")
        head = args[at + 1]
        del args[at:at + 2]
    if len(args) != 1:
        sys.exit("usage: verify_ledger.py FILE [--head HASH]")
    with open(args[0], encoding="utf-8") as export:
        problem, summary = check(export, head)
    if problem:
        print("broken: " + problem, file=sys.stderr)
        sys.exit(1)
    print(summary)


if __name__ == "__main__":
    main()

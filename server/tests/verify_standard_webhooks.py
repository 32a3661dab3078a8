#!/usr/bin/env python3
"""An independent check of WA Gateway's webhook signatures, written from the Standard Webhooks
specification with Python's standard library only. Reads JSON lines
{"secret", "id", "timestamp", "body", "signature"} on stdin; exits non-zero on any mismatch."""
import base64
import hashlib
import hmac
import json
import sys

failures = 0
checked = 0
for line in sys.stdin:
    if not line.strip():
        continue
    item = json.loads(line)
    secret = item["secret"]
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    signed = f'{item["id"]}.{item["timestamp"]}.{item["body"]}'.encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in item["signature"].split(" ") if part.startswith("v1,")]
    checked += 1
    if not any(hmac.compare_digest(expected, sig) for sig in offered):
        failures += 1
        print(f"bad signature for {item['id']}", file=sys.stderr)
print(f"checked {checked} signatures, {failures} bad")
sys.exit(1 if failures or checked == 0 else 0)

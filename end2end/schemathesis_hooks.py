"""Schemathesis hooks for end2end/openapi-conformance.sh.

An Idempotency-Key names one message: reusing it with another body is answered 422
idempotency_key_reused, a rule about earlier requests that no schema can state. Clients are
asked to use a new key for a new message, so a valid generated key is made unique here (it stays
1 to 255 visible ASCII characters, so valid). Invalid generated keys are left as they are, to be
refused.
"""
import itertools
import re

import schemathesis

_VALID_KEY = re.compile(r"[!-~]{1,240}")
_COUNTER = itertools.count(1)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and _VALID_KEY.fullmatch(value):
                headers[name] = f"{value}.{next(_COUNTER)}"

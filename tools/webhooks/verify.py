"""Verifies webhook deliveries with `standardwebhooks` (PyPI), the reference implementation of
the Standard Webhooks specification, independent of ours.

Reads JSON lines `{"secret", "id", "timestamp", "signature", "body"}` on stdin, one per
delivery as a receiver got it, and verifies each as a receiver would (signature and timestamp
tolerance). Prints `verified N`; exits non-zero on the first delivery that does not verify.

    target/tools-venv/bin/python tools/webhooks/verify.py < deliveries.jsonl
"""

import json
import sys

from standardwebhooks.webhooks import Webhook

count = 0
for line in sys.stdin:
    delivery = json.loads(line)
    Webhook(delivery["secret"]).verify(
        delivery["body"],
        {
            "webhook-id": delivery["id"],
            "webhook-timestamp": delivery["timestamp"],
            "webhook-signature": delivery["signature"],
        },
    )
    count += 1
print(f"verified {count}")

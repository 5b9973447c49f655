"""Parses Prometheus exposition with the official `prometheus_client` package's OpenMetrics
parser (what a Prometheus server accepts) and prints every sample as JSON:
`[{"name", "labels", "value"}, ...]`. Fails on text the parser refuses.

    python tools/metrics/parse.py < exposition.txt
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
print(json.dumps(samples))

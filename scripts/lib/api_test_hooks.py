"""Schemathesis hooks for the stateful phase of scripts/api-test.

A random body never names a role that exists, so every generated create would stop at the
probe (422) and the links from createConnector (get, update, sync, syncs, search, delete) would
never be followed. This hook turns each create of the stateful phase into one that passes the
probe: a fresh id and index, the customer bucket and the role that trusts the worker (from the
S3C_API_TEST_* environment variables scripts/api-test sets). Every other request stays random.
"""

import itertools
import os

import schemathesis

_ids = itertools.count(1)


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is None or operation.method.upper() != "POST" or operation.path != "/api/v1/connectors":
        return body
    n = next(_ids)
    return {
        "id": f"stateful-{n}",
        "index_name": f"stateful-{n}",
        "bucket_uri": os.environ["S3C_API_TEST_BUCKET_URI"],
        "role_arn": os.environ["S3C_API_TEST_ROLE_ARN"],
        "expected_bucket_owner": os.environ["S3C_API_TEST_OWNER"],
        "interval": "1h",
    }

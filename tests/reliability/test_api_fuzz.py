"""The API fuzzed from its own OpenAPI document: schemathesis generates requests for every
operation (valid, boundary and invalid bodies, paths and queries) against the live
server on PostgreSQL, authenticated as an admin and as a service; none may answer 5xx.

CI runs a fixed (derandomized) set; `nox -s stateful` also runs this with more examples
(`MANA_CREDITS_FUZZ_EXAMPLES`).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from mana_credits_http import ROUTES, openapi

from .live import KEY, LiveServer

pytestmark = pytest.mark.postgres

EXAMPLES = int(os.environ.get("MANA_CREDITS_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = os.environ.get("MANA_CREDITS_STATEFUL_RANDOM") != "1"


# The document the server serves at /openapi.json, built without a server.
schema = schemathesis.openapi.from_dict(openapi.document(ROUTES))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_is_a_server_error(case: schemathesis.Case[Any], live: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live.token('fuzzer', 'admin')}", "X-Service-Key": KEY}
    case.call_and_validate(base_url=live.base, headers=headers, checks=[not_a_server_error])

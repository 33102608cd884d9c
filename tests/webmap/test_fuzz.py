"""Hostile input: schemathesis runs every operation of the OpenAPI document as admin.

The fuzzer writes (it posts, replaces and deletes features, regenerates grids...), so it
runs against its own server on its own database ``safegrid_fuzz``, never the one the
other tests share. No answer may be a server error, and every status must be documented.

The operations are parametrized from :func:`webmap.openapi.openapi_document` at
collection time (schemathesis' fixture-based loader does not work with pytest 9.2);
:func:`test_the_fuzzed_document_is_the_one_served` checks that the live ``/openapi`` is
that same document. Deterministic: a fixed seed and derandomized generation.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig

from layers.db import engine
from layers.users import issue_token
from tests.conftest import Server, demo_database
from webmap.openapi import openapi_document

pytestmark = [pytest.mark.db, pytest.mark.slow]

FUZZ_DB = "safegrid_fuzz"
SEED = 20260611
CHECKS = ["not_a_server_error", "status_code_conformance"]

# Values of the demo the fuzzer mixes into what it generates, so that it gets past "no
# such jurisdiction" into the analyses and edits: a community, a street, a district and
# a city; neighbouring cities; feature ids, camera codes and ETags that exist.
DICTIONARIES = {
    "jurisdiction": ["430103002001", "430103002", "430103", "430100"],
    "city": ["430100", "430200", "430300"],
    "ids": [1, 2, 3, 5, 8],
    "cameras": ["CAM000001", "CAM000002"],
    "etags": ['"1"', '"2"', 'W/"1"', '"99"'],
}
PARAMETERS = {
    "query.jurisdiction": "jurisdiction", "body.jurisdiction": "jurisdiction",
    "query.a": "city", "query.b": "city", "body.a": "city", "body.b": "city",
    "path.featureId": "ids", "path.gridId": "ids", "path.runId": "ids",
    "query.off": "cameras", "header.If-Match": "etags",
}
CONFIG = SchemathesisConfig.from_dict({
    "seed": SEED,
    "suppress-health-check": ["all"],
    "generation": {"max-examples": 10, "deterministic": True, "database": "none"},
    # Descriptions and tiles take little input: a few examples are enough there.
    "operations": [{"include-path-regex": r"^/(collections/[a-z_]+(/queryables)?|tiles/.*)$",
                    "generation": {"max-examples": 3}}],
    "dictionaries": {name: {"values": values} for name, values in DICTIONARIES.items()},
    "parameters": {key: {"dictionary": name, "probability": 0.6}
                   for key, name in PARAMETERS.items()},
    "phases": {"stateful": {"enabled": False}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
})


def _fuzz_order(document: dict) -> dict:
    """The document with the jurisdictions' item operations last: deleting a city or a
    community early would leave the analyses nothing to work on."""
    last = "/collections/jurisdictions/items/"
    paths = sorted(document["paths"].items(), key=lambda item: item[0].startswith(last))
    return {**document, "paths": dict(paths)}


schema = schemathesis.openapi.from_dict(_fuzz_order(openapi_document("")), config=CONFIG)


@pytest.fixture(scope="module")
def fuzz_url() -> str:
    """The fuzzer's own database with the small demo (seed 1)."""
    return demo_database(FUZZ_DB)


@pytest.fixture(scope="module")
def fuzz_base(fuzz_url, tmp_path_factory):
    """A ``safegrid serve`` of its own on the fuzzer's database (no rate limit); its URL."""
    server = Server(fuzz_url, tmp_path_factory.mktemp("fuzz") / "server.log",
                    {"SAFEGRID_RATE_LIMIT": "off"})
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def admin_headers(fuzz_url) -> dict[str, str]:
    with engine(fuzz_url).begin() as conn:
        return {"Authorization": f"Bearer {issue_token(conn, 'admin')}"}


def test_the_fuzzed_document_is_the_one_served(fuzz_base):
    served = requests.get(f"{fuzz_base}/openapi", timeout=30).json()
    built = openapi_document("")
    assert served["paths"] == built["paths"]
    assert served["components"] == built["components"]
    assert len(list(schema.get_all_operations())) == sum(map(len, served["paths"].values()))


@schema.parametrize()
def test_no_operation_answers_a_server_error(case, fuzz_base, admin_headers):
    # (an analysis fitted afresh may take more than schemathesis' 10 s on a busy machine:
    # slow is not a server error, so it is given a minute)
    case.call_and_validate(base_url=fuzz_base, headers=admin_headers, timeout=60)

"""One error class per meaning: one hierarchy under SafegridError, each class carrying
its HTTP status, and no two classes of one name."""

import importlib
import pkgutil
from collections import defaultdict

import layers
import webmap
from layers import errors
from layers.access import UnknownJurisdiction as AccessUnknown
from layers.edit import Missing, StaleVersion
from layers.errors import (
    BadRequest,
    Forbidden,
    InputRejected,
    NotFound,
    SafegridError,
    UnknownJurisdiction,
)
from layers.runs import UnknownRun
from webmap.ogcapi import NotFound as OgcNotFound
from webmap.params import BadRequest as ParamsBadRequest


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def _all_errors() -> set[type]:
    for package in (layers, webmap):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" in info.name or ".demo" in info.name:
                continue
            importlib.import_module(info.name)
    return _subclasses(SafegridError)


def test_not_found_is_not_a_bad_request():
    assert NotFound.http_status == 404 and BadRequest.http_status == 400
    assert not issubclass(NotFound, BadRequest)
    assert OgcNotFound is NotFound and ParamsBadRequest is BadRequest
    assert issubclass(Missing, NotFound) and issubclass(UnknownRun, NotFound)


def test_an_unknown_jurisdiction_is_one_class_answering_400():
    assert AccessUnknown is UnknownJurisdiction
    assert UnknownJurisdiction.http_status == 400 and issubclass(UnknownJurisdiction, BadRequest)


def test_every_status_is_a_client_error_and_a_refinement_keeps_its_meaning():
    """Every error is the client's, but a peer server's failure: a gateway error (502)."""
    bases = {BadRequest: 400, Forbidden: 403, NotFound: 404, errors.Conflict: 409,
             errors.PreconditionFailed: 412, errors.Unprocessable: 422}
    assert {cls: cls.http_status for cls in bases} == bases
    assert StaleVersion.http_status == 412 and InputRejected.http_status == 422
    found = _all_errors()
    assert Missing in found and UnknownRun in found
    for cls in found:
        if cls is errors.PeerUnavailable:
            assert cls.http_status == 502
            continue
        assert 400 <= cls.http_status < 500, cls
        for base in (Forbidden, NotFound, errors.Conflict, errors.PreconditionFailed):
            if issubclass(cls, base):
                assert cls.http_status == base.http_status, cls


def test_no_two_error_classes_share_a_name():
    by_name = defaultdict(list)
    for cls in _all_errors():
        by_name[cls.__name__].append(f"{cls.__module__}.{cls.__qualname__}")
    assert {k: v for k, v in by_name.items() if len(v) > 1} == {}

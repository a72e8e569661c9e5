"""Every CertcheckError answers as the problem document its class declares (api/problems.py)."""

from __future__ import annotations

import json

import pytest

from certcheck import errors
from certcheck.api.problems import PROBLEM_JSON, problem_of

ALL = sorted(
    (
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.CertcheckError)
    ),
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("error", ALL, ids=lambda c: c.__name__)
def test_the_class_line_is_the_answer(error: type[errors.CertcheckError]) -> None:
    exc = error("what happened")
    response = problem_of(exc)
    body = json.loads(bytes(response.body))
    assert response.status_code == body["status"] == error.status
    assert response.media_type == PROBLEM_JSON
    assert body["code"] == error.code
    assert body["type"] == f"urn:certcheck:problem:{error.code}"
    assert body["detail"] == "what happened"
    assert body["title"] == (error.title or error.code.replace("_", " ").capitalize())
    assert response.headers.get("retry-after") == (
        str(error.retry_after) if error.retry_after else None
    )


def test_the_tree_in_the_module_docstring_names_every_class() -> None:
    doc = errors.__doc__ or ""
    assert [c.__name__ for c in ALL if c.__name__ not in doc] == []


def test_an_instance_overrides_code_status_and_retry_after() -> None:
    exc = errors.RateLimited("slow down", retry_after=7)
    assert problem_of(exc).headers["retry-after"] == "7"
    refused = errors.UploadRefused("too big", code="UPLOAD_TOO_LARGE", status=413)
    assert json.loads(bytes(problem_of(refused).body))["code"] == "UPLOAD_TOO_LARGE"
    assert problem_of(refused).status_code == 413
    assert errors.UploadRefused.code == "INVALID_UPLOAD"  # the class keeps its own


def test_a_failed_job_is_not_worth_asking_again() -> None:
    assert "retry-after" in problem_of(errors.JobNotFinished("running")).headers
    failed = problem_of(errors.JobFailed("the job failed: boom"))
    assert (failed.status_code, "retry-after" in failed.headers) == (409, False)


@pytest.mark.parametrize(
    ("exc", "header", "value"),
    [
        (errors.Unauthenticated("no key"), "www-authenticate", "Bearer"),
        (errors.PayloadTooLarge("too big"), "connection", "close"),
    ],
)
def test_headers_of_their_own(exc: errors.CertcheckError, header: str, value: str) -> None:
    assert problem_of(exc).headers[header] == value

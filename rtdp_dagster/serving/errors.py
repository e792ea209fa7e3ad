"""Errors the router answers with OpenTSDB's JSON shape: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations


class ApiError(Exception):
    """A request the router answers with an HTTP error code and a message for the user."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def backend_unavailable(message: str) -> ApiError:
    return ApiError(502, message)


def backend_timeout(message: str) -> ApiError:
    return ApiError(504, message)

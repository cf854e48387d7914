"""The ``failureInfo`` objects a task attempt can end with, in the service's JSON shape.

The codes are the ones the Batch service documents for task failures (``TaskFailureInformationCodes``
in the Batch SDKs); the messages are our own wording.
"""

from __future__ import annotations

from typing import Any

USER_ERROR = "usererror"
SERVER_ERROR = "servererror"

# Pre-processing: resource files.
BLOB_ACCESS_DENIED = "BlobAccessDenied"
BLOB_NOT_FOUND = "BlobNotFound"
BLOB_DOWNLOAD_MISC_ERROR = "BlobDownloadMiscError"
BLOB_DOWNLOAD_TIMED_OUT = "BlobDownloadTimedOut"
RESOURCE_DIRECTORY_CREATE_FAILED = "ResourceDirectoryCreateFailed"
RESOURCE_FILE_CREATE_FAILED = "ResourceFileCreateFailed"
RESOURCE_FILE_WRITE_FAILED = "ResourceFileWriteFailed"
# Launching the command line.
COMMAND_PROGRAM_NOT_FOUND = "CommandProgramNotFound"
COMMAND_LAUNCH_FAILED = "CommandLaunchFailed"
# The process.
FAILURE_EXIT_CODE = "FailureExitCode"
TASK_ENDED = "TaskEnded"
# Post-processing: output files.
FILE_UPLOAD_ACCESS_DENIED = "FileUploadAccessDenied"
FILE_UPLOAD_CONTAINER_NOT_FOUND = "FileUploadContainerNotFound"
FILE_UPLOAD_MISC_ERROR = "FileUploadMiscError"
# Deploying a referenced application package (missing, not active, or not a valid zip).
APPLICATION_PACKAGE_ERROR = "ApplicationPackageError"
# The task's own properties cannot be scheduled or run (shapes no request validation let through).
INVALID_TASK_SPECIFICATION = "InvalidTaskSpecification"
# Container tasks: an image that cannot be pulled, settings the pool cannot run, anything else.
CONTAINER_INVALID_IMAGE = "ContainerInvalidImage"
CONTAINER_INVALID_SETTINGS = "ContainerInvalidSettings"
CONTAINER_MISC_ERROR = "ContainerMiscError"
# Anything else (a fault of the emulator itself).
UNKNOWN = "Unknown"


class TaskFailure(Exception):
    """Raised inside the runner to end an attempt with a given ``failureInfo``."""

    def __init__(self, code: str, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def to_failure_info(self, category: str = USER_ERROR) -> dict[str, Any]:
        return failure_info(category, self.code, self.message, self.details)


def failure_info(
    category: str, code: str, message: str, details: dict[str, str] | None = None
) -> dict[str, Any]:
    """Build a ``failureInfo`` object; ``details`` becomes the list of name/value pairs."""
    info: dict[str, Any] = {"category": category, "code": code, "message": message}
    if details:
        info["details"] = [{"name": name, "value": value} for name, value in details.items()]
    return info


def exit_code_failure() -> dict[str, Any]:
    """The failure of a task whose process exited with a non-zero code."""
    return failure_info(
        USER_ERROR,
        FAILURE_EXIT_CODE,
        "The task exited with an exit code representing a failure",
        {
            "Message": "The task process exited with an unexpected exit code",
            "AdditionalErrorCode": FAILURE_EXIT_CODE,
        },
    )


def wall_clock_failure(max_seconds: float) -> dict[str, Any]:
    """The failure of a task that ran past its ``maxWallClockTime`` and was terminated."""
    return failure_info(
        SERVER_ERROR,
        TASK_ENDED,
        "The task was ended because it exceeded its maximum wall clock time",
        {"MaxWallClockTime": f"{max_seconds:g}s"},
    )


def cancelled_failure() -> dict[str, Any]:
    """The failure of a task that was terminated on request while it ran."""
    return failure_info(USER_ERROR, TASK_ENDED, "The task was ended by a request to terminate it")


def invalid_task_failure(error: Exception) -> dict[str, Any]:
    """The failure of a task whose own properties keep it from being scheduled or started."""
    return failure_info(
        USER_ERROR,
        INVALID_TASK_SPECIFICATION,
        "The task could not be scheduled or started: a property of the task or its job is invalid",
        {"Message": f"{type(error).__name__}: {error}"[:1024]},
    )


def container_failure(code: str, message: str, **details: str) -> dict[str, Any]:
    """The failure of a container task that could not start (a ``Container*`` code of the service)."""
    return failure_info(USER_ERROR, code, message, details)

"""Catalogue of every wire error code VBS answers with (vbs-api §10, §2.5).

Each code is an :class:`ApiCode`: the stable string a client matches on, the
HTTP status this contract binds to it (vbs-api §10 "HTTP" column, decision
[D7]) and a default human-readable message.  Rules raise them through
:func:`fail`, which builds the one service error type
(:class:`vbs.errors.ServiceError`) so handlers only have to render
``api_code``/``status``/``message``.

Three families live here:

* ``COMMON_*`` and ``VB_*`` — ``common.*`` and ``VolumeBackup.*`` codes of the
  VBS extension endpoints (ext-error body, vbs-api §2.5.1);
* ``AB_*`` — ``AutoBackup.*`` codes of the policy and policy-tag endpoints;
* ``NATIVE_*`` — the OpenStack fault names of the native endpoints
  (native-error body, vbs-api §2.5.2, openstack-compat §4.3).  Their ``code``
  is the fault key (``badRequest`` …); the body's integer ``code`` is the
  status.

Two reference codes are bound to two statuses (``common.0011`` and
``VolumeBackup.0110``: 404 when unknown, 500 when the lookup failed); each
binding is its own constant.  Codes that only a public-cloud back end can
produce (SAS/SATA/SSD quotas, temporary disks, DR sites, HANA/DESS) are listed
so that the catalogue is complete, but VBS never emits them (vbs-api §10.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from vbs.errors import ServiceError

__all__ = [
    "AB_ACTION_UNSUPPORTED",
    "AB_ANGLE_BRACKETS",
    "AB_AUTH_INTERNAL_ERROR",
    "AB_BACKUP_QUOTA",
    "AB_BODY_MISSING",
    "AB_DEFAULT_POLICY_IMMUTABLE",
    "AB_DESS_UNSUPPORTED",
    "AB_FORBIDDEN",
    "AB_FREQUENCY_INVALID",
    "AB_HANA_UNSUPPORTED",
    "AB_INTERNAL_ERROR",
    "AB_MALFORMED_REQUEST",
    "AB_POLICY_DELETE_FAILED",
    "AB_POLICY_EXECUTE_FAILED",
    "AB_POLICY_EXECUTING",
    "AB_POLICY_ID_MISSING",
    "AB_POLICY_LIMIT",
    "AB_POLICY_NAME_INVALID",
    "AB_POLICY_NAME_LENGTH",
    "AB_POLICY_NOT_FOUND",
    "AB_POLICY_REFERENCE_NOT_FOUND",
    "AB_POLICY_RESOURCE_LIMIT",
    "AB_POLICY_STATUS_INVALID",
    "AB_REMAIN_FIRST_BACKUP_INVALID",
    "AB_REQUIRED_OBJECT_EMPTY",
    "AB_RESOURCES_MISSING",
    "AB_RESOURCE_ID_MISSING",
    "AB_RESOURCE_INVALID",
    "AB_RESOURCE_READ_FAILED",
    "AB_RESOURCE_STATUS_INVALID",
    "AB_RESOURCE_TYPE_INVALID",
    "AB_RETENTION_INVALID",
    "AB_SNAPSHOT_QUOTA",
    "AB_START_TIME_INVALID",
    "AB_TAG_INVALID",
    "AB_TAG_LIMIT",
    "AB_TAG_NOT_FOUND",
    "AB_TIME_ZONE_INVALID",
    "AB_TOKEN_DOMAIN_UNKNOWN",
    "AB_TOKEN_EXPIRED",
    "AB_TOKEN_MISSING",
    "ALL_CODES",
    "ApiCode",
    "COMMON_JOB_LOOKUP_FAILED",
    "COMMON_JOB_NOT_FOUND",
    "NATIVE_BAD_MEDIA_TYPE",
    "NATIVE_BAD_METHOD",
    "NATIVE_BAD_REQUEST",
    "NATIVE_CONFLICT",
    "NATIVE_FORBIDDEN",
    "NATIVE_INTERNAL_ERROR",
    "NATIVE_NOT_FOUND",
    "NATIVE_NOT_IMPLEMENTED",
    "NATIVE_OVER_LIMIT",
    "NATIVE_SERVICE_UNAVAILABLE",
    "NATIVE_UNAUTHORIZED",
    "NATIVE_VERSION_NOT_ACCEPTABLE",
    "VB_BACKUP_CREATE_FAILED",
    "VB_BACKUP_CREATE_NO_RESULT",
    "VB_BACKUP_DETAIL_READ_FAILED",
    "VB_BACKUP_ERROR",
    "VB_BACKUP_HAS_IMAGE",
    "VB_BACKUP_LIST_ALL_FAILED",
    "VB_BACKUP_LIST_FAILED",
    "VB_BACKUP_LOOKUP_EMPTY",
    "VB_BACKUP_NOT_FOUND",
    "VB_BACKUP_READ_FAILED",
    "VB_BACKUP_RESULT_READ_FAILED",
    "VB_BACKUP_STATUS_READ_FAILED",
    "VB_DELETE_BACKUP_REMOVE_FAILED",
    "VB_DELETE_FAILED",
    "VB_DELETE_INVALID",
    "VB_DELETE_SNAPSHOT_FAILED",
    "VB_DELETE_SNAPSHOT_READ_FAILED",
    "VB_DELETE_SUBTASK_QUEUE_FAILED",
    "VB_DESCRIPTION_INVALID",
    "VB_DESS_UNSUPPORTED",
    "VB_ENCRYPTION_KEY_UNAVAILABLE",
    "VB_FORBIDDEN",
    "VB_IMAGE_READ_FAILED",
    "VB_JOB_QUEUE_FAILED",
    "VB_LOOKUP_FAILED",
    "VB_MALFORMED_BODY",
    "VB_NAME_BAD_CHARACTER",
    "VB_NAME_EMPTY",
    "VB_NAME_MISSING",
    "VB_NAME_RESERVED_PREFIX",
    "VB_NAME_TOO_LONG",
    "VB_PERMISSION_DATA_INVALID",
    "VB_PERMISSION_UNAVAILABLE",
    "VB_QUOTA_BACKUP_COUNT",
    "VB_QUOTA_BACKUP_GIGABYTES",
    "VB_QUOTA_READ_FAILED",
    "VB_QUOTA_SAS_SNAPSHOTS",
    "VB_QUOTA_SAS_VOLUME_CAPACITY",
    "VB_QUOTA_SAS_VOLUME_COUNT",
    "VB_QUOTA_SATA_SNAPSHOTS",
    "VB_QUOTA_SATA_VOLUME_CAPACITY",
    "VB_QUOTA_SATA_VOLUME_COUNT",
    "VB_QUOTA_SNAPSHOT_COUNT",
    "VB_QUOTA_SSD_SNAPSHOTS",
    "VB_QUOTA_SSD_VOLUME_CAPACITY",
    "VB_QUOTA_SSD_VOLUME_COUNT",
    "VB_QUOTA_VOLUME_CAPACITY",
    "VB_QUOTA_VOLUME_COUNT",
    "VB_RESTORE_BACKUP_ID_MALFORMED",
    "VB_RESTORE_BACKUP_ID_MISSING",
    "VB_RESTORE_BACKUP_NOT_AVAILABLE",
    "VB_RESTORE_DR_SITE",
    "VB_RESTORE_MALFORMED",
    "VB_RESTORE_NO_RESULT",
    "VB_RESTORE_TARGET_NOT_FOUND",
    "VB_RESTORE_VOLUME_BACKUP_IN_PROGRESS",
    "VB_RESTORE_VOLUME_ERROR",
    "VB_RESTORE_VOLUME_ID_INVALID",
    "VB_RESTORE_VOLUME_NOT_AVAILABLE",
    "VB_RESTORE_VOLUME_NOT_FOUND",
    "VB_RESTORE_VOLUME_TOO_SMALL",
    "VB_RESTORE_WRITE_FAILED",
    "VB_SERVICE_UNAVAILABLE",
    "VB_SNAPSHOT_CREATE_FAILED",
    "VB_SNAPSHOT_CREATE_NO_RESULT",
    "VB_SNAPSHOT_ERROR",
    "VB_SNAPSHOT_LOOKUP_EMPTY",
    "VB_SNAPSHOT_READ_FAILED",
    "VB_SNAPSHOT_STATUS_READ_FAILED",
    "VB_TAG_INVALID",
    "VB_TAG_LIMIT",
    "VB_TEMP_VOLUME_CREATE_FAILED",
    "VB_TEMP_VOLUME_CREATE_NO_RESULT",
    "VB_TEMP_VOLUME_ERROR",
    "VB_TEMP_VOLUME_LOOKUP_EMPTY",
    "VB_TEMP_VOLUME_READ_FAILED",
    "VB_TEMP_VOLUME_STATUS_READ_FAILED",
    "VB_UNAUTHENTICATED",
    "VB_VOLUME_BACKUP_IN_PROGRESS",
    "VB_VOLUME_BACKUP_LIMIT",
    "VB_VOLUME_ID_MALFORMED",
    "VB_VOLUME_ID_MISSING",
    "VB_VOLUME_LIST_FAILED",
    "VB_VOLUME_NOT_FOUND",
    "VB_VOLUME_STATUS_INVALID",
    "fail",
    "lookup",
]


@dataclass(frozen=True, slots=True)
class ApiCode:
    """One wire error: ``code`` (e.g. ``VolumeBackup.0003``), HTTP ``status``
    and the default ``message`` used when a rule has nothing more precise."""

    code: str
    status: int
    message: str


def fail(code: ApiCode, message: str | None = None) -> NoReturn:
    """Raise :class:`ServiceError` for ``code``.

    ``message`` should name the field and the rule broken (it replaces the
    default text, which is generic by nature).
    """
    raise ServiceError(message or code.message, code.code, code.status)


# --- common.* / shared (vbs-api §10.1) ------------------------------------
COMMON_JOB_NOT_FOUND = ApiCode("common.0011", 404, "The job does not exist.")
COMMON_JOB_LOOKUP_FAILED = ApiCode("common.0011", 500, "The job could not be looked up.")
VB_JOB_QUEUE_FAILED = ApiCode("VolumeBackup.0014", 500, "The job could not be queued.")
VB_UNAUTHENTICATED = ApiCode(
    "VolumeBackup.0041", 401, "The caller's permissions could not be verified."
)
VB_FORBIDDEN = ApiCode("VolumeBackup.0042", 403, "The caller may not perform this operation.")
VB_PERMISSION_DATA_INVALID = ApiCode(
    "VolumeBackup.0044", 403, "The caller's permission data is not valid."
)

# --- creating a backup (vbs-api §10.2) -------------------------------------
VB_MALFORMED_BODY = ApiCode(
    "VolumeBackup.0002", 400, "The request body is malformed or lacks the backup object."
)
VB_NAME_TOO_LONG = ApiCode("VolumeBackup.0003", 400, "The backup name exceeds 64 characters.")
VB_NAME_BAD_CHARACTER = ApiCode(
    "VolumeBackup.0004",
    400,
    "The backup name may contain only letters, digits, underscores (_) and hyphens (-).",
)
VB_NAME_RESERVED_PREFIX = ApiCode(
    "VolumeBackup.0005", 400, "The backup name must not start with 'auto'."
)
VB_DESCRIPTION_INVALID = ApiCode(
    "VolumeBackup.0006", 400, "The backup description is too long or contains '<' or '>'."
)
VB_NAME_MISSING = ApiCode("VolumeBackup.0007", 400, "The backup name is missing.")
VB_PERMISSION_UNAVAILABLE = ApiCode(
    "VolumeBackup.0008", 403, "Permission information could not be obtained."
)
VB_ENCRYPTION_KEY_UNAVAILABLE = ApiCode(
    "VolumeBackup.0009", 500, "The encryption key of the encrypted disk could not be obtained."
)
VB_VOLUME_ID_MISSING = ApiCode("VolumeBackup.0010", 400, "The volume_id is missing or empty.")
VB_VOLUME_ID_MALFORMED = ApiCode("VolumeBackup.0011", 400, "The volume_id is not a valid ID.")
VB_VOLUME_STATUS_INVALID = ApiCode(
    "VolumeBackup.0012", 400, "The disk is neither available nor in-use."
)
VB_VOLUME_BACKUP_IN_PROGRESS = ApiCode(
    "VolumeBackup.0013", 400, "An earlier backup of the disk is still being created."
)
VB_SNAPSHOT_CREATE_FAILED = ApiCode("VolumeBackup.0017", 500, "Taking the snapshot failed.")
VB_SNAPSHOT_CREATE_NO_RESULT = ApiCode(
    "VolumeBackup.0018", 500, "Snapshot creation returned no result."
)
VB_SNAPSHOT_READ_FAILED = ApiCode(
    "VolumeBackup.0019", 500, "Reading the snapshot during backup creation failed."
)
VB_SNAPSHOT_LOOKUP_EMPTY = ApiCode("VolumeBackup.0020", 500, "Snapshot lookup returned no result.")
VB_VOLUME_NOT_FOUND = ApiCode("VolumeBackup.0021", 404, "The disk does not exist.")
VB_TEMP_VOLUME_CREATE_FAILED = ApiCode(
    "VolumeBackup.0022", 500, "Creating the temporary disk failed."
)
VB_TEMP_VOLUME_CREATE_NO_RESULT = ApiCode(
    "VolumeBackup.0023", 500, "Temporary-disk creation returned no result."
)
VB_TEMP_VOLUME_READ_FAILED = ApiCode(
    "VolumeBackup.0024", 500, "Reading the temporary disk failed."
)
VB_TEMP_VOLUME_LOOKUP_EMPTY = ApiCode(
    "VolumeBackup.0025", 500, "Temporary-disk lookup returned no result."
)
VB_NAME_EMPTY = ApiCode("VolumeBackup.0026", 400, "The backup name must not be empty.")
VB_BACKUP_CREATE_FAILED = ApiCode("VolumeBackup.0027", 500, "Creating the backup failed.")
VB_BACKUP_CREATE_NO_RESULT = ApiCode(
    "VolumeBackup.0028", 500, "Backup creation returned no result."
)
VB_BACKUP_RESULT_READ_FAILED = ApiCode(
    "VolumeBackup.0029", 500, "Reading the backup result failed."
)
VB_BACKUP_LOOKUP_EMPTY = ApiCode("VolumeBackup.0030", 500, "Backup lookup returned no result.")
VB_VOLUME_LIST_FAILED = ApiCode("VolumeBackup.0035", 500, "Listing the project's disks failed.")
VB_BACKUP_LIST_FAILED = ApiCode("VolumeBackup.0036", 500, "Listing the project's backups failed.")
VB_SNAPSHOT_STATUS_READ_FAILED = ApiCode(
    "VolumeBackup.0037", 500, "Reading the snapshot status failed."
)
VB_TEMP_VOLUME_STATUS_READ_FAILED = ApiCode(
    "VolumeBackup.0038", 500, "Reading the temporary disk's status failed."
)
VB_BACKUP_STATUS_READ_FAILED = ApiCode(
    "VolumeBackup.0039", 500, "Reading the backup status failed."
)
VB_VOLUME_BACKUP_LIMIT = ApiCode(
    "VolumeBackup.0040", 400, "The disk already has the maximum number of backups."
)
VB_LOOKUP_FAILED = ApiCode("VolumeBackup.0043", 500, "Looking up the disk or backup failed.")
VB_TAG_INVALID = ApiCode("VolumeBackup.0049", 400, "A tag violates the tag rules.")
VB_TAG_LIMIT = ApiCode("VolumeBackup.0050", 400, "A backup may carry at most 10 tags.")
VB_DESS_UNSUPPORTED = ApiCode("VolumeBackup.0053", 400, "DESS disks cannot be backed up.")
VB_SNAPSHOT_ERROR = ApiCode("VolumeBackup.0062", 500, "The snapshot ended in error.")
VB_TEMP_VOLUME_ERROR = ApiCode("VolumeBackup.0063", 500, "The temporary disk ended in error.")
VB_BACKUP_ERROR = ApiCode("VolumeBackup.0064", 500, "The backup ended in error.")
VB_QUOTA_READ_FAILED = ApiCode("VolumeBackup.0070", 500, "Quota information could not be read.")
VB_QUOTA_SAS_VOLUME_COUNT = ApiCode(
    "VolumeBackup.0071", 400, "No quota left for the number of SAS disks."
)
VB_QUOTA_SAS_VOLUME_CAPACITY = ApiCode(
    "VolumeBackup.0072", 400, "No quota left for SAS disk capacity."
)
VB_QUOTA_SATA_VOLUME_COUNT = ApiCode(
    "VolumeBackup.0073", 400, "No quota left for the number of SATA disks."
)
VB_QUOTA_SATA_VOLUME_CAPACITY = ApiCode(
    "VolumeBackup.0074", 400, "No quota left for SATA disk capacity."
)
VB_QUOTA_SSD_VOLUME_COUNT = ApiCode(
    "VolumeBackup.0075", 400, "No quota left for the number of SSD disks."
)
VB_QUOTA_SSD_VOLUME_CAPACITY = ApiCode(
    "VolumeBackup.0076", 400, "No quota left for SSD disk capacity."
)
VB_QUOTA_SAS_SNAPSHOTS = ApiCode("VolumeBackup.0077", 400, "No quota left for SAS disk snapshots.")
VB_QUOTA_SATA_SNAPSHOTS = ApiCode(
    "VolumeBackup.0078", 400, "No quota left for SATA disk snapshots."
)
VB_QUOTA_SSD_SNAPSHOTS = ApiCode("VolumeBackup.0079", 400, "No quota left for SSD disk snapshots.")
VB_QUOTA_BACKUP_COUNT = ApiCode("VolumeBackup.0080", 400, "The backup count quota is exhausted.")
VB_QUOTA_BACKUP_GIGABYTES = ApiCode(
    "VolumeBackup.0081", 400, "The backup capacity (GB) quota is exhausted."
)
VB_QUOTA_VOLUME_COUNT = ApiCode("VolumeBackup.0082", 400, "The disk count quota is exhausted.")
VB_QUOTA_VOLUME_CAPACITY = ApiCode(
    "VolumeBackup.0083", 400, "The disk capacity quota is exhausted."
)
VB_QUOTA_SNAPSHOT_COUNT = ApiCode(
    "VolumeBackup.0084", 400, "The snapshot count quota is exhausted."
)

# --- deleting a backup (vbs-api §10.3) -------------------------------------
VB_DELETE_SUBTASK_QUEUE_FAILED = ApiCode(
    "VolumeBackup.0100", 500, "A deletion sub-task could not be queued."
)
VB_DELETE_SNAPSHOT_FAILED = ApiCode("VolumeBackup.0101", 500, "Removing the snapshot failed.")
VB_DELETE_BACKUP_REMOVE_FAILED = ApiCode("VolumeBackup.0102", 500, "Removing the backup failed.")
VB_BACKUP_DETAIL_READ_FAILED = ApiCode("VolumeBackup.0103", 500, "Reading backup details failed.")
VB_IMAGE_READ_FAILED = ApiCode("VolumeBackup.0104", 500, "Reading image information failed.")
VB_DELETE_INVALID = ApiCode(
    "VolumeBackup.0105", 400, "The backup cannot be deleted in its current status."
)
VB_DELETE_SNAPSHOT_READ_FAILED = ApiCode(
    "VolumeBackup.0109", 500, "Reading the snapshot during deletion failed."
)
VB_BACKUP_NOT_FOUND = ApiCode("VolumeBackup.0110", 404, "The backup does not exist.")
VB_BACKUP_READ_FAILED = ApiCode("VolumeBackup.0110", 500, "The backup could not be read.")
VB_BACKUP_HAS_IMAGE = ApiCode(
    "VolumeBackup.0113", 400, "An image was created from this backup, so it cannot be deleted."
)
VB_BACKUP_LIST_ALL_FAILED = ApiCode("VolumeBackup.0123", 500, "Listing all backups failed.")
VB_DELETE_FAILED = ApiCode("VolumeBackup.0125", 500, "Deleting the backup failed.")
VB_SERVICE_UNAVAILABLE = ApiCode(
    "VolumeBackup.0900", 503, "The service is temporarily unavailable."
)

# --- restoring a disk (vbs-api §10.4) --------------------------------------
VB_RESTORE_TARGET_NOT_FOUND = ApiCode(
    "VolumeBackup.0111", 404, "The target disk or the backup does not exist."
)
VB_RESTORE_WRITE_FAILED = ApiCode("VolumeBackup.0200", 500, "Writing the data back failed.")
VB_RESTORE_NO_RESULT = ApiCode("VolumeBackup.0201", 500, "The restore returned no result.")
VB_RESTORE_VOLUME_ERROR = ApiCode("VolumeBackup.0202", 400, "The target disk is in error.")
VB_RESTORE_BACKUP_ID_MISSING = ApiCode("VolumeBackup.0203", 400, "The backup_id is empty.")
VB_RESTORE_BACKUP_ID_MALFORMED = ApiCode(
    "VolumeBackup.0204", 400, "The backup_id is not a valid ID."
)
VB_RESTORE_VOLUME_NOT_AVAILABLE = ApiCode(
    "VolumeBackup.0205", 400, "The target disk is not available."
)
VB_RESTORE_VOLUME_BACKUP_IN_PROGRESS = ApiCode(
    "VolumeBackup.0206", 400, "A backup of the target disk is being created."
)
VB_RESTORE_VOLUME_NOT_FOUND = ApiCode("VolumeBackup.0207", 404, "The target disk does not exist.")
VB_RESTORE_VOLUME_ID_INVALID = ApiCode("VolumeBackup.0208", 400, "The volume_id is not valid.")
VB_RESTORE_VOLUME_TOO_SMALL = ApiCode(
    "VolumeBackup.0209", 400, "The target disk is smaller than the backup."
)
VB_RESTORE_MALFORMED = ApiCode("VolumeBackup.0210", 400, "The restore request is malformed.")
VB_RESTORE_DR_SITE = ApiCode(
    "VolumeBackup.0211", 400, "The target disk sits at a disaster-recovery site."
)
VB_RESTORE_BACKUP_NOT_AVAILABLE = ApiCode("VolumeBackup.0089", 400, "The backup is not available.")

# --- backup policies and policy tags (vbs-api §10.5) -----------------------
AB_BODY_MISSING = ApiCode("AutoBackup.0000", 400, "The request carries no body.")
AB_REQUIRED_OBJECT_EMPTY = ApiCode(
    "AutoBackup.0001", 400, "A required object in the body is empty."
)
AB_TOKEN_MISSING = ApiCode("AutoBackup.0002", 401, "No token in the request header.")
AB_TOKEN_EXPIRED = ApiCode("AutoBackup.0003", 401, "The token has expired.")
AB_TOKEN_DOMAIN_UNKNOWN = ApiCode(
    "AutoBackup.0005", 401, "The domain ID cannot be derived from the token."
)
AB_POLICY_ID_MISSING = ApiCode("AutoBackup.0006", 400, "The policy ID is missing.")
AB_MALFORMED_REQUEST = ApiCode("AutoBackup.0008", 400, "The request could not be parsed.")
AB_INTERNAL_ERROR = ApiCode("AutoBackup.0009", 500, "Internal processing error.")
AB_DEFAULT_POLICY_IMMUTABLE = ApiCode(
    "AutoBackup.0100", 400, "The default policy may not be changed in this way."
)
AB_POLICY_NAME_LENGTH = ApiCode("AutoBackup.0101", 400, "The policy name has an invalid length.")
AB_POLICY_NAME_INVALID = ApiCode("AutoBackup.0102", 400, "The policy name is invalid.")
AB_START_TIME_INVALID = ApiCode("AutoBackup.0103", 400, "The start_time is invalid.")
AB_POLICY_STATUS_INVALID = ApiCode("AutoBackup.0104", 400, "The policy status is invalid.")
AB_REMAIN_FIRST_BACKUP_INVALID = ApiCode(
    "AutoBackup.0105", 400, "The remain_first_backup_of_curMonth value is invalid."
)
AB_FREQUENCY_INVALID = ApiCode("AutoBackup.0106", 400, "The backup interval is invalid.")
AB_RETENTION_INVALID = ApiCode("AutoBackup.0107", 400, "The retention setting is invalid.")
AB_POLICY_LIMIT = ApiCode(
    "AutoBackup.0203", 400, "The project already has the maximum number of policies."
)
AB_POLICY_RESOURCE_LIMIT = ApiCode(
    "AutoBackup.0204", 400, "The policy already has the maximum number of disks."
)
AB_POLICY_NOT_FOUND = ApiCode("AutoBackup.0205", 404, "The policy does not exist.")
AB_POLICY_REFERENCE_NOT_FOUND = ApiCode("AutoBackup.1100", 404, "The policy does not exist.")
AB_POLICY_DELETE_FAILED = ApiCode("AutoBackup.1300", 500, "Deleting the policy failed.")
AB_RESOURCE_INVALID = ApiCode("AutoBackup.1400", 400, "The resource is invalid.")
AB_POLICY_EXECUTE_FAILED = ApiCode("AutoBackup.1700", 500, "Executing the policy failed.")
AB_RESOURCE_STATUS_INVALID = ApiCode(
    "AutoBackup.0206", 400, "The disk's status does not allow association."
)
AB_RESOURCES_MISSING = ApiCode("AutoBackup.0207", 400, "No resources supplied.")
AB_RESOURCE_READ_FAILED = ApiCode(
    "AutoBackup.0208", 500, "Reading details of the resource failed."
)
AB_RESOURCE_ID_MISSING = ApiCode("AutoBackup.0209", 400, "A resource entry lacks its ID.")
AB_HANA_UNSUPPORTED = ApiCode("AutoBackup.0210", 400, "HANA disks cannot be added to a policy.")
AB_RESOURCE_TYPE_INVALID = ApiCode("AutoBackup.0211", 400, "The resource type is invalid.")
AB_FORBIDDEN = ApiCode("AutoBackup.0213", 403, "The request is not authorised.")
AB_TAG_INVALID = ApiCode("AutoBackup.0214", 400, "A tag parameter is invalid.")
AB_TAG_LIMIT = ApiCode("AutoBackup.0215", 400, "The tag limit is reached.")
AB_TAG_NOT_FOUND = ApiCode("AutoBackup.0216", 404, "The policy has no tag with that key.")
AB_SNAPSHOT_QUOTA = ApiCode("AutoBackup.0217", 400, "Not enough snapshot quota.")
AB_BACKUP_QUOTA = ApiCode("AutoBackup.0218", 400, "Not enough backup quota.")
AB_DESS_UNSUPPORTED = ApiCode("AutoBackup.0220", 400, "DESS disks cannot be added to a policy.")
AB_ANGLE_BRACKETS = ApiCode("AutoBackup.0221", 400, "The request contains '<' or '>'.")
AB_ACTION_UNSUPPORTED = ApiCode("AutoBackup.0222", 400, "The requested action is not supported.")
AB_POLICY_EXECUTING = ApiCode("AutoBackup.0225", 400, "The policy is currently executing.")
AB_TIME_ZONE_INVALID = ApiCode("AutoBackup.0226", 400, "The time_zone is invalid.")
AB_AUTH_INTERNAL_ERROR = ApiCode("AutoBackup.9002", 500, "Internal error in authentication.")

# --- native OpenStack faults (vbs-api §2.5.2, openstack-compat §4.3) -------
NATIVE_BAD_REQUEST = ApiCode("badRequest", 400, "Invalid input received.")
NATIVE_UNAUTHORIZED = ApiCode(
    "unauthorized", 401, "The request you have made requires authentication."
)
NATIVE_FORBIDDEN = ApiCode("forbidden", 403, "Policy doesn't allow this operation.")
NATIVE_NOT_FOUND = ApiCode("itemNotFound", 404, "The resource could not be found.")
NATIVE_BAD_METHOD = ApiCode("badMethod", 405, "The method is not allowed for this resource.")
NATIVE_VERSION_NOT_ACCEPTABLE = ApiCode(
    "computeFault", 406, "The requested API version is not supported."
)
NATIVE_CONFLICT = ApiCode("conflictingRequest", 409, "The request conflicts with current state.")
NATIVE_OVER_LIMIT = ApiCode("overLimit", 413, "Quota exceeded.")
NATIVE_BAD_MEDIA_TYPE = ApiCode("badMediaType", 415, "Unsupported Content-Type.")
NATIVE_INTERNAL_ERROR = ApiCode("computeFault", 500, "An unexpected error occurred.")
NATIVE_NOT_IMPLEMENTED = ApiCode("notImplemented", 501, "Not implemented.")
NATIVE_SERVICE_UNAVAILABLE = ApiCode(
    "serviceUnavailable", 503, "The service is temporarily unavailable."
)

ALL_CODES: tuple[ApiCode, ...] = tuple(v for v in globals().values() if isinstance(v, ApiCode))
"""Every constant above, in definition order."""

_BY_KEY: Mapping[tuple[str, int], ApiCode] = {(c.code, c.status): c for c in ALL_CODES}


def lookup(code: str, status: int | None = None) -> ApiCode | None:
    """Find a catalogued code, e.g. to rebuild an error from a job's
    ``error_code``.  With ``status`` omitted the lowest-status binding of a
    doubly-bound code (``common.0011``, ``VolumeBackup.0110``) is returned."""
    if status is not None:
        return _BY_KEY.get((code, status))
    matches = sorted((c for c in ALL_CODES if c.code == code), key=lambda c: c.status)
    return matches[0] if matches else None

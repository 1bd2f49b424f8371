"""Delivery report status tables, as data, for every provider: what each provider's status
says in Scenarist's campaign terms.

Campaign statuses (the seeds' campaign events): `delivered` (reached the handset),
`failed` (delivery was tried and did not succeed), `rejected` (refused before delivery was
tried: by the provider, its checks or the operator's front door) and `intermediate` (not
final yet; a final report follows).

Entries marked "choice:" are ours, not the provider's words.
"""

from __future__ import annotations

DELIVERED = "delivered"
FAILED = "failed"
REJECTED = "rejected"
INTERMEDIATE = "intermediate"
CAMPAIGN_STATUSES = frozenset({DELIVERED, FAILED, REJECTED, INTERMEDIATE})

# -- Sinch SMS: the report's `status` ------------------------------------------------------
SINCH_SMS_STATUSES: dict[str, str] = {
    "Queued": INTERMEDIATE,
    "Dispatched": INTERMEDIATE,
    "Delivered": DELIVERED,
    "Failed": FAILED,
    "Expired": FAILED,
    # choice: Sinch gives no outcome with Unknown and it is final (no later report
    # comes), so the message is counted as not delivered.
    "Unknown": FAILED,
    "Rejected": REJECTED,
    # choice: Aborted, Cancelled and Deleted never reached the operator (Aborted is also
    # what a recipient without a parameter value gets, code 405), so they count as rejected.
    "Aborted": REJECTED,
    "Cancelled": REJECTED,
    "Deleted": REJECTED,
}

# Sinch SMS `code` -> description (PROVIDERS.md); other codes are SMPP codes, left
# undescribed. Used as the report's `comment`.
SINCH_SMS_CODES: dict[int, str] = {
    0: "Delivered",
    400: "Queued",
    401: "Dispatched",
    402: "Unroutable",
    403: "Internal error",
    404: "Temporary delivery failure",
    405: "Unmatched parameter",
    406: "Internal expiry",
    407: "Cancelled",
    408: "Internal reject",
    410: "Unmatched default originator",
    411: "Exceeded parts limit",
    412: "Unprovisioned region",
    413: "Blocked account",
    414: "Bad media URL",
    415: "Rejected by MMSC",
    416: "MMS not supported",
    417: "Unreachable",
    418: "Unrecognized content",
}

# -- Infobip SMS and MMS: the report's `status.groupName` -------------------------------
INFOBIP_GROUPS: dict[str, str] = {
    "ACCEPTED": INTERMEDIATE,
    "PENDING": INTERMEDIATE,
    "DELIVERED": DELIVERED,
    "UNDELIVERABLE": FAILED,
    "EXPIRED": FAILED,
    "REJECTED": REJECTED,
}
# `status.groupId` -> `groupName`, for a report that gives only the id.
INFOBIP_GROUP_IDS: dict[int, str] = {
    0: "ACCEPTED",
    1: "PENDING",
    2: "UNDELIVERABLE",
    3: "DELIVERED",
    4: "EXPIRED",
    5: "REJECTED",
}

# -- Sinch MMS postback `code` -> (campaign status, what went out) ----------------------
SINCH_MMS_CODES: dict[str, tuple[str, str]] = {
    "N101": (INTERMEDIATE, "mms"),  # sent to the carrier
    "N102": (DELIVERED, "mms"),
    "N103": (FAILED, "mms"),  # expired
    "E101": (FAILED, "mms"),  # sending failure
    # choice: E102 "rejected" by the carrier or handset is our `rejected`, although the
    # MMS reached the operator.
    "E102": (REJECTED, "mms"),
    "N202": (DELIVERED, "sms"),  # delivered as the fallback SMS
    "E202": (FAILED, "sms"),  # the fallback SMS failed
}

# -- Conversation API MESSAGE_DELIVERY `status` -----------------------------------------
CONVERSATION_STATUSES: dict[str, str] = {
    "QUEUED_ON_CHANNEL": INTERMEDIATE,
    # choice: SWITCHING_CHANNEL means the message failed on one channel and is being
    # tried on the next one in `channel_priority_order`: not final.
    "SWITCHING_CHANNEL": INTERMEDIATE,
    "DELIVERED": DELIVERED,
    # choice: READ implies delivery (never sent on MMS; other channels may send it after
    # DELIVERED, or instead of it).
    "READ": DELIVERED,
    "FAILED": FAILED,
}

# Conversation `channel` -> message type (other channels: None).
CONVERSATION_CHANNEL_TYPES: dict[str, str] = {"MMS": "mms", "SMS": "sms"}

"""SQLAlchemy 2.0 typed models, one module per group of nouns."""

from tipline.models.alert import (
    Alert,
    AlertStep,
    Delivery,
    DeliveryAttempt,
    Incident,
    IncidentTip,
    OnCallOverride,
)
from tipline.models.audit import AuditEvent
from tipline.models.flood import Flood, FloodTip
from tipline.models.forget import TwilioForget
from tipline.models.keys import DataKey, NamedSecret
from tipline.models.note import Note
from tipline.models.ops import TRIAGE_SETTING, Setting, WorkerLease
from tipline.models.outbox import OutboundMessage
from tipline.models.reveal import REVEAL_STATUSES, Reveal
from tipline.models.school import Policy, School, Shift, Staff, staff_schools
from tipline.models.signin import RecoveryCode, SigninAddress, StaffSession
from tipline.models.tip import (
    CHECKING,
    FORGOTTEN_AT_TWILIO,
    Attachment,
    InboundSid,
    Message,
    Tip,
    Tipster,
)
from tipline.models.user import User, user_schools

__all__ = [
    "CHECKING",
    "FORGOTTEN_AT_TWILIO",
    "REVEAL_STATUSES",
    "TRIAGE_SETTING",
    "Alert",
    "AlertStep",
    "Attachment",
    "AuditEvent",
    "DataKey",
    "Delivery",
    "DeliveryAttempt",
    "Flood",
    "FloodTip",
    "InboundSid",
    "Incident",
    "IncidentTip",
    "Message",
    "NamedSecret",
    "Note",
    "OnCallOverride",
    "OutboundMessage",
    "Policy",
    "RecoveryCode",
    "Reveal",
    "School",
    "Setting",
    "Shift",
    "SigninAddress",
    "Staff",
    "StaffSession",
    "Tip",
    "Tipster",
    "TwilioForget",
    "User",
    "WorkerLease",
    "staff_schools",
    "user_schools",
]

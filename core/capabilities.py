"""Capabilities and the roles that grant them.

Views and services check capabilities, never role names. The role definitions here are the
source of truth; the data migration `accounts.0002_seed_roles` (and later ones) copy them into
the Role table, and `manage.py roles_matrix` prints the matrix from the table.
"""

from __future__ import annotations

from django.db import models


class Capability(models.TextChoices):
    VIEW_PATIENTS = "view_patients", "View patient records"
    REGISTER_PATIENTS = "register_patients", "Register and edit patients"
    MANAGE_COVERAGE = "manage_coverage", "Enter and verify insurance coverage"
    MANAGE_FLAGS = "manage_flags", "Add and clear patient alerts"
    MERGE_PATIENTS = "merge_patients", "Merge duplicate patient records"
    IMPORT_PATIENTS = "import_patients", "Import patients (FHIR, HL7)"
    EXPORT_PATIENTS = "export_patients", "Export patient data"
    BREAK_GLASS = "break_glass", "Emergency access outside own locations"
    VIEW_OPERATIONS = "view_operations", "View operational counts and dashboards"
    VIEW_AUDIT = "view_audit", "View and export the audit trail"
    MANAGE_USERS = "manage_users", "Manage users, roles and locations"
    USE_API = "use_api", "Use the JSON and FHIR APIs with a personal token"
    VIEW_SCHEDULE = "view_schedule", "View calendars and the check-in board"
    SCHEDULE_APPOINTMENTS = "schedule_appointments", "Book, cancel and reschedule; manage waitlist"
    CHECK_IN = "check_in", "Check patients in, room them and check them out"
    OVERBOOK = "overbook", "Double-book a practitioner who allows overbooking"
    MANAGE_SCHEDULES = "manage_schedules", "Edit availability, exceptions, types and resources"
    MANAGE_INTERFACES = "manage_interfaces", "Manage interfaces: HL7 feeds, calendar feed links"
    VIEW_BILLING = "view_billing", "View charges, claims, remittances and patient accounts"
    ENTER_CHARGES = "enter_charges", "Enter charges and code visits (ICD-10-CM, CPT/HCPCS)"
    MANAGE_CLAIMS = "manage_claims", "Scrub, batch, submit, resubmit and void claims"
    POST_REMITTANCES = "post_remittances", "Ingest 835 remittances and work unmatched payments"
    WORK_DENIALS = "work_denials", "Work the denial queue: assign, appeal, resubmit"
    POST_PAYMENTS = "post_payments", "Take patient payments, issue receipts, request refunds"
    APPROVE_REFUNDS = "approve_refunds", "Approve refunds requested by someone else"
    MANAGE_DISPUTES = "manage_disputes", "Open and resolve billing disputes"
    RUN_STATEMENTS = "run_statements", "Run and reprint patient statements"
    MANAGE_BILLING_SETUP = (
        "manage_billing_setup",
        "Maintain payers, fee schedules, providers, rules",
    )
    VIEW_REVENUE_REPORTS = "view_revenue_reports", "View A/R aging, KPIs and payment reports"


C = Capability

ROLE_DEFINITIONS: dict[str, dict[str, object]] = {
    "patient_service_rep": {
        "name": "Patient service representative",
        "requires_2fa": False,
        "capabilities": [
            C.VIEW_PATIENTS,
            C.BREAK_GLASS,
            C.REGISTER_PATIENTS,
            C.MANAGE_COVERAGE,
            C.MANAGE_FLAGS,
            C.USE_API,
            C.VIEW_SCHEDULE,
            C.SCHEDULE_APPOINTMENTS,
            C.CHECK_IN,
            C.VIEW_BILLING,
            C.POST_PAYMENTS,
        ],
    },
    "medical_office_admin": {
        "name": "Medical office administrator",
        "requires_2fa": False,
        "capabilities": [
            C.VIEW_PATIENTS,
            C.BREAK_GLASS,
            C.REGISTER_PATIENTS,
            C.MANAGE_COVERAGE,
            C.MANAGE_FLAGS,
            C.IMPORT_PATIENTS,
            C.VIEW_OPERATIONS,
            C.USE_API,
            C.VIEW_SCHEDULE,
            C.SCHEDULE_APPOINTMENTS,
            C.CHECK_IN,
            C.MANAGE_SCHEDULES,
            C.VIEW_BILLING,
            C.POST_PAYMENTS,
            C.MANAGE_DISPUTES,
            C.VIEW_REVENUE_REPORTS,
        ],
    },
    "medical_office_manager": {
        "name": "Medical office manager",
        "requires_2fa": True,
        "capabilities": [
            C.VIEW_PATIENTS,
            C.BREAK_GLASS,
            C.REGISTER_PATIENTS,
            C.MANAGE_COVERAGE,
            C.MANAGE_FLAGS,
            C.MERGE_PATIENTS,
            C.IMPORT_PATIENTS,
            C.EXPORT_PATIENTS,
            C.VIEW_OPERATIONS,
            C.USE_API,
            C.VIEW_SCHEDULE,
            C.SCHEDULE_APPOINTMENTS,
            C.CHECK_IN,
            C.OVERBOOK,
            C.MANAGE_SCHEDULES,
            C.MANAGE_INTERFACES,
            C.VIEW_BILLING,
            C.POST_PAYMENTS,
            C.APPROVE_REFUNDS,
            C.MANAGE_DISPUTES,
            C.RUN_STATEMENTS,
            C.VIEW_REVENUE_REPORTS,
        ],
    },
    "billing_specialist": {
        "name": "Billing specialist",
        "requires_2fa": False,
        "capabilities": [
            C.VIEW_PATIENTS,
            C.BREAK_GLASS,
            C.MANAGE_COVERAGE,
            C.USE_API,
            C.VIEW_SCHEDULE,
            C.VIEW_BILLING,
            C.ENTER_CHARGES,
            C.MANAGE_CLAIMS,
            C.POST_REMITTANCES,
            C.WORK_DENIALS,
            C.POST_PAYMENTS,
            C.MANAGE_DISPUTES,
            C.RUN_STATEMENTS,
            C.MANAGE_BILLING_SETUP,
            C.VIEW_REVENUE_REPORTS,
        ],
    },
    "patient_services_manager": {
        "name": "Patient services manager",
        "requires_2fa": True,
        "capabilities": [
            C.VIEW_PATIENTS,
            C.BREAK_GLASS,
            C.REGISTER_PATIENTS,
            C.MANAGE_COVERAGE,
            C.MANAGE_FLAGS,
            C.MERGE_PATIENTS,
            C.EXPORT_PATIENTS,
            C.VIEW_OPERATIONS,
            C.USE_API,
            C.VIEW_SCHEDULE,
            C.SCHEDULE_APPOINTMENTS,
            C.CHECK_IN,
            C.OVERBOOK,
            C.MANAGE_SCHEDULES,
            C.VIEW_BILLING,
            C.WORK_DENIALS,
            C.POST_PAYMENTS,
            C.APPROVE_REFUNDS,
            C.MANAGE_DISPUTES,
            C.RUN_STATEMENTS,
            C.MANAGE_BILLING_SETUP,
            C.VIEW_REVENUE_REPORTS,
        ],
    },
    "service_director": {
        "name": "Service director",
        "requires_2fa": True,
        "capabilities": [C.VIEW_OPERATIONS, C.VIEW_REVENUE_REPORTS],
    },
    "medical_director": {
        "name": "Medical director",
        "requires_2fa": True,
        "capabilities": [
            C.VIEW_PATIENTS,
            C.BREAK_GLASS,
            C.VIEW_OPERATIONS,
            C.VIEW_SCHEDULE,
            C.VIEW_BILLING,
            C.WORK_DENIALS,
            C.VIEW_REVENUE_REPORTS,
        ],
    },
    "privacy_officer": {
        "name": "Privacy officer",
        "requires_2fa": True,
        "capabilities": [C.VIEW_AUDIT, C.VIEW_OPERATIONS],
    },
    "system_admin": {
        "name": "System administrator",
        "requires_2fa": True,
        "capabilities": [C.MANAGE_USERS, C.VIEW_OPERATIONS, C.MANAGE_INTERFACES],
    },
}

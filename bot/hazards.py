"""What a miner can report: hazard categories and severities, with their translatable labels."""

from __future__ import annotations

from aiogram.utils.i18n import lazy_gettext as __

# code → label. Codes are stored in the database and in callback data: never rename one.
CATEGORIES = {
    "gas": __("Gas, methane, gas detectors"),
    "ventilation": __("Ventilation"),
    "roof": __("Roof or rib fall"),
    "dust": __("Dust"),
    "fire": __("Fire or explosion risk"),
    "electrical": __("Electrical hazards"),
    "machinery": __("Machinery and conveyors"),
    "transport": __("Transport and haulage"),
    "water": __("Water inflow, flooding"),
    "explosives": __("Explosives and blasting"),
    "ppe": __("PPE and self-rescuers"),
    "pressure": __("Pressure to break safety rules or skip checks"),
    "fatigue": __("Working hours and fatigue"),
    "harassment": __("Harassment or violence"),
    "other": __("Something else"),
}

DANGER = "danger"
SEVERITIES = {
    DANGER: __("🔴 Danger to life right now"),
    "serious": __("🟠 Serious, needs fixing soon"),
    "attention": __("🟡 Needs attention"),
}

STATUSES = {
    "received": __("Received"),
    "acknowledged": __("Acknowledged by the committee"),
    "in_progress": __("In progress"),
    "escalated_employer": __("Raised with the employer"),
    "escalated_inspection": __("Raised with the state labour inspection"),
    "resolved": __("Resolved"),
    "not_confirmed": __("Not confirmed"),
}

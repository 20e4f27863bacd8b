"""The names the synthetic organisation is drawn from: client groups (the clients the agents
work for), people, activities, time zones, and the apps and devices punches come from."""

from __future__ import annotations

# One per client group; past the last one they start again as "Acme Dental 2", ...
CLIENTS = [
    "Acme Dental",
    "Brightside Realty",
    "Cobalt Logistics",
    "Dunmore Legal",
    "Evergreen Clinics",
    "Fairway Insurance",
    "Granite Roofing",
    "Harbor Freight Brokers",
    "Ivy Tutoring",
    "Juniper Home Care",
    "Keystone Plumbing",
    "Lumen Solar",
    "Maple Accounting",
    "Northstar Movers",
    "Orchid Spa Group",
    "Pinnacle HVAC",
    "Quarry Outdoor",
    "Redwood Vets",
]

FIRST_NAMES = [
    "Maria",
    "Jose",
    "Angel",
    "Mark",
    "Kristine",
    "Paolo",
    "Aisha",
    "Rahul",
    "Priya",
    "Ayesha",
    "Bilal",
    "Sara",
    "John",
    "Emily",
    "Hannah",
    "Lukas",
    "Sophie",
    "Oliver",
    "Grace",
    "Daniel",
]
LAST_NAMES = [
    "Santos",
    "Reyes",
    "Cruz",
    "Bautista",
    "Garcia",
    "Sharma",
    "Patel",
    "Iyer",
    "Khan",
    "Ahmed",
    "Malik",
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Muller",
    "Schmidt",
    "Wilson",
    "Lopez",
    "Lim",
]

ACTIVITIES = [
    ("Inbound Calls", "INB", "#1f77b4"), ("Outbound Calls", "OUT", "#ff7f0e"),
    ("Email Support", "EML", "#2ca02c"), ("Chat Support", "CHT", "#d62728"),
    ("Data Entry", "DAT", "#9467bd"), ("Back Office", "BKO", "#8c564b"),
    ("Scheduling", "SCH", "#e377c2"), ("Quality Review", "QAR", "#7f7f7f"),
    ("Training", "TRN", "#bcbd22"), ("Team Meeting", "MTG", "#17becf"),
    ("Lead Research", "RES", "#393b79"), ("Legacy Ticketing", "LEG", "#637939"),
]  # fmt: skip
ARCHIVED_ACTIVITY = "Legacy Ticketing"

# Offshore-heavy, with DST zones (America/*, Europe/*) and fixed ones (Asia/*, UTC).
ZONE_WEIGHTS = {
    "Asia/Manila": 34, "Asia/Kolkata": 14, "Asia/Karachi": 10, "America/New_York": 10,
    "America/Chicago": 8, "Europe/London": 8, "Europe/Berlin": 8, "UTC": 8,
}  # fmt: skip

CLIENT_TYPES = ["Web", "Mobile", "Desktop"]
PLATFORMS: list[dict[str, str | None]] = [
    {"clientVersion": "5.14.2", "os": "Windows 11", "deviceModel": None},
    {"clientVersion": "5.13.0", "os": "Android 14", "deviceModel": "Pixel 7"},
    {"clientVersion": "5.14.1", "os": "macOS 14.5", "deviceModel": "MacBook Air"},
]

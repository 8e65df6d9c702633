"""The fictional shop's fixed facts: its history, catalogue, stores and customers' countries.

Also the shop's own contact details (its email, used on orders taken by phone, and its
walk-in phone, used on store receipts) and the placeholder identifiers customers type:
junk that appears on many persons' rows and must not glue them together.
"""

from __future__ import annotations

HISTORY_DAYS = 3 * 365
EVENT_WINDOW_DAYS = 365

ILS_PER_USD = 3.7

SHOP_DOMAIN = "zaytoun.example"
STORE_EMAIL = f"store@{SHOP_DOMAIN}"
WALK_IN_PHONE = "02-274 1234"
JUNK_EMAILS = ("test@test.com", "no@email.com", "none@none.com")
JUNK_PHONES = ("0000000000", "0599999999")
STORE_TIMEZONE = "Asia/Hebron"

CATEGORIES = (
    "olive_oil", "zaatar_spices", "maftoul_grains", "dates", "soap",
    "ceramics", "embroidery", "olive_wood", "books",
)

# (sku, category, unit price in ILS)
PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("OIL-EV-0500", "olive_oil", 45.0), ("OIL-EV-1000", "olive_oil", 80.0),
    ("OIL-ORG-0750", "olive_oil", 70.0), ("OIL-TIN-3L", "olive_oil", 210.0),
    ("OIL-TIN-5L", "olive_oil", 330.0),
    ("ZTR-0250", "zaatar_spices", 25.0), ("ZTR-0500", "zaatar_spices", 45.0),
    ("SUMAC-0200", "zaatar_spices", 20.0), ("ZTR-GIFT", "zaatar_spices", 60.0),
    ("MFT-0500", "maftoul_grains", 20.0), ("MFT-1000", "maftoul_grains", 35.0),
    ("FRK-0500", "maftoul_grains", 22.0),
    ("DATE-MJ-0500", "dates", 35.0), ("DATE-MJ-1000", "dates", 60.0),
    ("SOAP-NAB-1", "soap", 15.0), ("SOAP-NAB-6", "soap", 70.0), ("SOAP-GIFT", "soap", 55.0),
    ("CER-BOWL", "ceramics", 90.0), ("CER-PLATE", "ceramics", 140.0), ("CER-MUG", "ceramics", 55.0),
    ("EMB-POUCH", "embroidery", 65.0), ("EMB-CUSHION", "embroidery", 180.0),
    ("EMB-PANEL", "embroidery", 450.0),
    ("OW-NATIVITY", "olive_wood", 220.0), ("OW-CROSS", "olive_wood", 45.0),
    ("OW-ROSARY", "olive_wood", 30.0),
    ("BK-COOKBOOK", "books", 120.0), ("BK-POETRY", "books", 60.0), ("BK-CHILDREN", "books", 45.0),
)

# (ISO country, share of persons, cities, calling code)
COUNTRIES: tuple[tuple[str, float, tuple[str, ...], str], ...] = (
    ("PS", 0.72, ("Ramallah", "Al-Bireh", "Bethlehem", "Beit Sahour", "Beit Jala", "Hebron",
                  "Nablus", "Jenin", "Jericho", "Tulkarm"), "970"),
    ("IL", 0.08, ("Nazareth", "Haifa", "Jaffa", "Acre", "Umm al-Fahm"), "972"),
    ("JO", 0.06, ("Amman", "Irbid", "Zarqa"), "962"),
    ("US", 0.06, ("Chicago", "Paterson", "Dearborn", "San Francisco"), "1"),
    ("GB", 0.03, ("London", "Manchester"), "44"),
    ("DE", 0.03, ("Berlin", "Hamburg"), "49"),
    ("FR", 0.02, ("Paris", "Marseille"), "33"),
)
STORES = ("RAM", "BTH")
STORE_NAMES = ("Ramallah", "Bethlehem")
STORE_OF_CITY = {"Ramallah": 0, "Al-Bireh": 0, "Bethlehem": 1, "Beit Sahour": 1, "Beit Jala": 1}

"""German dates and numbers: "4. Februar 2026", "Mi, 04.02.2026, 23:59:59", "1.234,56"."""

DATE_FORMAT = "j. F Y"
SHORT_DATE_FORMAT = "d.m.Y"
#: a time in the course's zone (courses.formatting.format_local adds the zone's name)
DATETIME_FORMAT = "D, d.m.Y, H:i:s"
SHORT_DATETIME_FORMAT = "d.m.Y, H:i"
TIME_FORMAT = "H:i"
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "."
NUMBER_GROUPING = 3

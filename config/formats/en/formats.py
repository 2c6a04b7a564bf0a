"""English dates and numbers as the site always wrote them (Django's own English differs)."""

DATE_FORMAT = "j F Y"
SHORT_DATE_FORMAT = "j M Y"
#: a time in the course's zone (courses.formatting.format_local adds the zone's name)
DATETIME_FORMAT = "D d M Y, H:i:s"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3

"""The site's pages by audience: ``public`` (everyone), ``student`` (signed-in members of a
course), ``staff`` (course staff outside the admin). ``leaderboard.urls`` lists them all."""

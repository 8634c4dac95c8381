"""Page services: the queries and writes the views call, kept out of the views."""

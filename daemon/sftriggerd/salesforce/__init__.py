"""The daemon's one seam to the org: OAuth flows, the session, the REST client, API usage."""

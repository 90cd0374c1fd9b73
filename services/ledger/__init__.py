"""The transparency log as a service: storage on the app database, HTTP read API, keys."""

"""Registry: organisations, users and API keys, bases and plots, pesticide products, devices."""

"""Mobile accounts: passwords (Argon2), refresh-token sessions per app install, access tokens (JWT)."""

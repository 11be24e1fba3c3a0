"""The service's pages and API for people: the approval API (`/v1/approvals`), the session
pages (`/sessions`, `/sessions/{id}`) and their login, served by the HTTP server."""

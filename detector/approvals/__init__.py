"""The two-person rule: a revocation (or any response) that needs a second person is held as
an approval in the state store until somebody other than the session's own person approves
or denies it, or it expires with the configured default outcome.

settings.py   `api:` (tokens, login) and `approvals:` (expiry, default outcome) settings
tokens.py     bearer tokens, hashed at rest, resolved to a person in constant time
decisions.py  the pure rules: who may decide, what a second decision means, expiry
gate.py       `StoreApprovalGate`, the ApprovalGate the responders ask before acting
requests.py   a sink that opens the approval for each decided response at flush time
"""

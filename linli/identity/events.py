"""Event types identity appends to the log. None ever carries a login code or a session token."""

from __future__ import annotations

CODE_REQUESTED = "identity.code_requested"
CODE_BURNED = "identity.code_burned"
USER_REGISTERED = "identity.user_registered"
LOGGED_IN = "identity.logged_in"
LOGGED_OUT = "identity.logged_out"
PROFILE_UPDATED = "identity.profile_updated"
ROLES_CHANGED = "identity.roles_changed"

"""Event types the referral domain appends to the log (names and payloads agreed with the other streams
in the event contracts), and the lower domains' events it reacts to, by name."""

from __future__ import annotations

BOUND = "referral.bound"
CONVERTED = "referral.converted"
REVERSED = "referral.reversed"
REFUSED = "referral.refused"
HONOURED = "referral.honoured"
POSTER_SHOWN = "share.poster_shown"
POSTER_SAVED = "share.poster_saved"
SHARED = "share.shared"
LEADERBOARD_CLOSED = "leaderboard.closed"
REWARD_GRANTED = "referral.reward_granted"
SETTINGS_UPDATED = "referral.settings_updated"

SHARE_EVENTS = frozenset({POSTER_SHOWN, POSTER_SAVED, SHARED})

# Lower domains' events, by name (referral imports their services, but reacts through the log).
ORDER_PAID = "order.paid"
ORDER_REFUNDED = "order.refunded"
LOGGED_IN = "identity.logged_in"

"""Share (即分享): invite codes, share links, attribution, posters, recommender honours, leaderboards."""

from __future__ import annotations

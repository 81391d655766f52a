"""Helpers shared by the three test tiers."""

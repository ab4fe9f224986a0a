"""The session core of SM: authorization, debit loops, refunds, CDR hand-off (docs/rating.md)."""

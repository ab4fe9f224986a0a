"""The session core of SM: authorization, debit loops, refunds, CDR hand-off (spec §4-§5)."""

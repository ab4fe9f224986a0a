"""StorDB: SQLAlchemy 2 models, engines and migrations shared by every service.

Each table has one owning service; its model module is named after that owner.
"""

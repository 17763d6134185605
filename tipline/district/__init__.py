"""The district: its configuration file, syncing it into the database (schools, staff, shifts,
policies), the cached lookups of who is on duty. Below it: platform, vault, models.
"""

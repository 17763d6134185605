"""What staff may see and do: access by role and school, casework on a tip (reply, status,
assignment, notes, reclassification), accounts and their second factor, sign-in, sessions,
dashboard figures, corrections.
"""

"""A database-driver look-alike: its errors come from a library module, as psycopg's would."""

"""Several watchers on one shared (PostgreSQL) state: what they share out between them.

`shared_sources`: a `shared = true` source is read by one watcher of the fleet at a time, under
a source lease (watcher/store/leases.py), from a checkpoint every watcher reads.
"""

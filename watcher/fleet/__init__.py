"""The fleet: several watchers on one shared state. `leader`: which one runs the fixes, the alert
delivery and the periodic jobs; `outbox`: how every watcher's alerts go out once, from it;
`roles`: that work wired onto the daemon's fix pipeline and alerter;
`shared_sources`: a `shared = true` source is read by one watcher at a time, under a source
lease, from a checkpoint every watcher reads."""

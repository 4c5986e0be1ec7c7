"""The fleet: several watchers on one shared state. `leader`: which one runs the fixes, the alert
delivery and the periodic jobs; `outbox`: how every watcher's alerts go out once, from it;
`roles`: that work wired onto the daemon's fix pipeline and alerter."""

"""The read store: the projections the HTTP API serves, kept current from the log.

Every update is written in the same store transaction as the log positions it came from, so a restart
resumes where it stopped and a replay into an empty store rebuilds the same content."""

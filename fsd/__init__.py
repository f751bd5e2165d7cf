"""fsd: the Function Stream supervisor daemon (registry, supervision, control server)."""

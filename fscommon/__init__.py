"""Code shared by fsd, fsworker and fsctl: the wire protocol, paths, exit codes, logging."""

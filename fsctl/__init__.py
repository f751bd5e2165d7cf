"""fsctl: the operator's command line for fsd (parse, send, print)."""

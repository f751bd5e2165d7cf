"""Cluster mode: the stores, membership and scheduling that several fsd share through Pulsar."""

from fsd.backlog import backlog_of, partitions_url, stats_url


def test_stats_url_for_short_and_full_names():
    assert (
        stats_url("http://127.0.0.1:8080/", "example-input")
        == "http://127.0.0.1:8080/admin/v2/persistent/public/default/example-input/stats"
    )
    assert (
        stats_url("http://h:1", "non-persistent://t/ns/a b")
        == "http://h:1/admin/v2/non-persistent/t/ns/a%20b/stats"
    )


def test_backlog_of():
    stats = {"subscriptions": {"fs-f": {"msgBacklog": 12}, "other": {}}}
    assert backlog_of(stats, "fs-f") == 12
    assert backlog_of(stats, "other") is None
    assert backlog_of({}, "fs-f") is None


def test_backlog_of_counts_messages_not_batches():
    # 5000 messages of ~109 bytes written as 8 batch entries: msgBacklog says 8.
    stats = {
        "msgInCounter": 5000,
        "bytesInCounter": 545_000,
        "subscriptions": {"fs-f": {"msgBacklog": 8, "backlogSize": 545_000}},
    }
    assert backlog_of(stats, "fs-f") == 5000
    # Without batching the entry count is exact and wins over a rough byte estimate.
    stats["subscriptions"]["fs-f"] = {"msgBacklog": 12, "backlogSize": 100}
    assert backlog_of(stats, "fs-f") == 12
    # Counters missing (a fresh broker): the entry count.
    assert backlog_of({"subscriptions": {"fs-f": {"msgBacklog": 3}}}, "fs-f") == 3


def test_partitioned_topics_read_partitioned_stats():
    assert stats_url("http://h:1", "t", partitioned=True).endswith("/t/partitioned-stats")
    assert partitions_url("http://h:1", "t") == (
        "http://h:1/admin/v2/persistent/public/default/t/partitions"
    )


def test_delayed_of_counts_messages_held_for_delayed_delivery():
    from fsd.backlog import delayed_of

    stats = {"subscriptions": {"fs-f": {"msgBacklog": 5, "msgDelayed": 3}}}
    assert delayed_of(stats, "fs-f") == 3
    assert delayed_of(stats, "other") == 0
    assert delayed_of({"subscriptions": {"fs-f": {"msgDelayed": -1}}}, "fs-f") == 0
    assert delayed_of({}, "fs-f") == 0

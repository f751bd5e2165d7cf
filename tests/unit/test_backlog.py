from fsd.backlog import backlog_of, stats_url


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

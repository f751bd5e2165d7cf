"""The inputs every language's example gets, and the outputs they must all give."""

from __future__ import annotations

# (input, output) for "basic"; output None means the input must fail (dead-lettered).
# Integers stay below 2**53: JavaScript numbers are exact only up to there.
BASIC: list[tuple[bytes, bytes | None]] = [
    (b'{"name":"rbt","money":2}', b'{"name":"rbt","money":3,"expected":0}'),
    (b'{"money":41,"name":"alice","expected":7}', b'{"name":"alice","money":42,"expected":7}'),
    (
        b' { "name" : "bob" , "money" : -5 , "expected" : null } ',
        b'{"name":"bob","money":-4,"expected":0}',
    ),
    (
        b'{"name":"c","money":0,"extra":{"a":[1,2,{"b":null}]},"ok":true}',
        b'{"name":"c","money":1,"expected":0}',
    ),
    (b'{"name":"dup","money":1,"money":5}', b'{"name":"dup","money":6,"expected":0}'),
    ('{"name":"zoë","money":1}'.encode(), '{"name":"zoë","money":2,"expected":0}'.encode()),
    (b'{"name":"say \\"hi\\"","money":10}', b'{"name":"say \\"hi\\"","money":11,"expected":0}'),
    (
        b'{"name":"big","money":9007199254740990}',
        b'{"name":"big","money":9007199254740991,"expected":0}',
    ),
    (b"not json", None),
    (b'{"name":"x"}', None),
    (b'{"name":5,"money":1}', None),
    (b'{"name":"x","money":1.5}', None),
    (b'{"name":"x","money":"1"}', None),
    (b"[1,2]", None),
    (b'{"name":"x","money":1,"expected":"no"}', None),
]

# "wordcount" with --config min_length=2, one replica: every line's records, in order.
WORDCOUNT_CONFIG = "min_length=2"
WORDCOUNT: list[tuple[bytes, list[bytes]]] = [
    (
        b"The cat and the hat.",
        [
            b'{"word":"the","count":1}',
            b'{"word":"cat","count":1}',
            b'{"word":"and","count":1}',
            b'{"word":"the","count":2}',
            b'{"word":"hat","count":1}',
        ],
    ),
    (b"  ...  ", []),
    (b"A b Cc dd", [b'{"word":"cc","count":1}', b'{"word":"dd","count":1}']),
    (
        "the_end 42 café".encode(),
        [
            b'{"word":"the","count":3}',
            b'{"word":"end","count":1}',
            b'{"word":"42","count":1}',
            b'{"word":"caf","count":1}',
        ],
    ),
    (b"THE the", [b'{"word":"the","count":4}', b'{"word":"the","count":5}']),
]

# Counters in the function's state once every line was processed.
WORDCOUNT_STATE = {"the": "5", "cat": "1", "cc": "1", "42": "1", "caf": "1"}

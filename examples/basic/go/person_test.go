//go:build !wasip1

package main

import (
	"testing"

	"functionstream.dev/sdk/fs"
)

// The conformance vectors of the "basic" function (every language gives the same bytes).
var vectors = []struct{ in, out string }{
	{`{"name":"rbt","money":2}`, `{"name":"rbt","money":3,"expected":0}`},
	{`{"money":41,"name":"alice","expected":7}`, `{"name":"alice","money":42,"expected":7}`},
	{` { "name" : "bob" , "money" : -5 , "expected" : null } `, `{"name":"bob","money":-4,"expected":0}`},
	{`{"name":"c","money":0,"extra":{"a":[1,2,{"b":null}]},"ok":true}`, `{"name":"c","money":1,"expected":0}`},
	{`{"name":"dup","money":1,"money":5}`, `{"name":"dup","money":6,"expected":0}`},
	{`{"name":"zoë","money":1}`, `{"name":"zoë","money":2,"expected":0}`},
	{`{"name":"say \"hi\"","money":10}`, `{"name":"say \"hi\"","money":11,"expected":0}`},
	{`{"name":"big","money":9007199254740990}`, `{"name":"big","money":9007199254740991,"expected":0}`},
	// Beyond the shared vectors.
	{`{"name":"\u00e9<&>\u2028\/","money":1}`, "{\"name\":\"é<&>\u2028/\",\"money\":2,\"expected\":0}"},
	{`{"name":"a\u0001\b\f\n\r\t\\","money":1}`, `{"name":"a\u0001\b\f\n\r\t\\","money":2,"expected":0}`},
	{`{"name":"\ud83d\ude00","money":9223372036854775806,"expected":-0}`, `{"name":"😀","money":9223372036854775807,"expected":0}`},
	{`{"NAME":5,"name":"x","Money":"y","money":1}`, `{"name":"x","money":2,"expected":0}`},
	{`{"name":"x","money":"1","money":1}`, `{"name":"x","money":2,"expected":0}`},
	{`{"n\u0061me":"esc","money":1}`, `{"name":"esc","money":2,"expected":0}`},
	{`{"a":"}{,\":","name":"q","b":[{"c":"]","name":1}],"money":3,"c":-1.5e3,"d":[]}`, `{"name":"q","money":4,"expected":0}`},
	{"\t{\n\"name\"\r:\"w\",\"money\":\n-0,\"expected\":null,\"expected\":4}\n", `{"name":"w","money":1,"expected":4}`},
	{`{"name":"","money":0,"expected":-9223372036854775808}`, `{"name":"","money":1,"expected":-9223372036854775808}`},
}

var failures = []string{
	`not json`, `{"name":"x"}`, `{"name":5,"money":1}`, `{"name":"x","money":1.5}`,
	`{"name":"x","money":"1"}`, `[1,2]`, `{"name":"x","money":1,"expected":"no"}`,
	// Beyond the shared vectors.
	``, `null`, `{}`, `{"name":"x","money":1,"expected":null,"expected":"4"}`, `{"name":"x","money":01}`, `"x"`, `{"money":1}`, `{"name":null,"money":1}`, `{"name":"x","money":null}`,
	`{"name":"x","money":1e3}`, `{"name":"x","money":10E0}`, `{"name":"x","money":1.0}`,
	`{"name":"x","money":9223372036854775807}`, `{"name":"x","money":9223372036854775808}`,
	`{"name":"x","money":-9223372036854775809}`, `{"name":"x","money":1,"expected":1.5}`,
	`{"name":"x","money":1} {}`, `{"name":"x","money":1}x`, `{"name":"x","money":1,}`,
	`{"name":"\ud800","money":1}`, `{"name":"\udc00x","money":1}`, `{"name":"\ud800\u0041","money":1}`,
	"{\"name\":\"\xff\",\"money\":1}", `{"name":"x","money":true}`, `{"name":["x"],"money":1}`,
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		out, err := person([]byte(v.in))
		if err != nil || string(out) != v.out {
			t.Errorf("%s\n  got  %s (%v)\n  want %s", v.in, out, err, v.out)
		}
	}
	for _, in := range failures {
		if out, err := person([]byte(in)); err == nil {
			t.Errorf("%s: want an error, got %s", in, out)
		}
	}
}

func TestThroughTheSDKFraming(t *testing.T) {
	got, err := fs.RunBatch([]byte(vectors[0].in), []byte("not json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Records) != 1 || string(got[0].Records[0]) != vectors[0].out {
		t.Errorf("vector: %+v", got[0])
	}
	if got[1].Err == "" || got[1].Records != nil {
		t.Errorf("failure: %+v", got[1])
	}
}

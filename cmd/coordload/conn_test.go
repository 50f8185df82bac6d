package main

import (
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

func TestParseHead(t *testing.T) {
	codes := codeTable()
	for _, tc := range []struct {
		frame string
		want  head
		ok    bool
	}{
		{`{"xid":12,"zxid":345,"err":""}`, head{xid: 12}, true},
		{`{"xid":12,"zxid":345,"err":"","stat":{"czxid":1}}`, head{xid: 12}, true},
		{`{"xid":7,"zxid":0,"err":"NoNode","msg":"x"}`, head{xid: 7, code: wire.NoNode}, true},
		{`{"xid":7,"zxid":0,"err":"Weird"}`, head{xid: 7, code: "Weird"}, true},
		{`{"xid":-1,"type":"watch","event":"NodeDataChanged","path":"/a","zxid":9}`, head{xid: -1}, true},
		{`{"zxid":1,"xid":3,"err":""}`, head{}, false},
		{`{"xid":3, "zxid":1,"err":""}`, head{}, false},
		{`{"xid":3,"zxid":1,"err":"No\"de"}`, head{}, false},
		{`{"xid":3,"zxid":1,"err":"NoNode"`, head{}, false},
		{`{"xid":,"zxid":1,"err":""}`, head{}, false},
		{``, head{}, false},
	} {
		got, ok := parseHead([]byte(tc.frame), codes)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseHead(%s) = %+v, %v; want %+v, %v", tc.frame, got, ok, tc.want, tc.ok)
		}
	}
	// What the server writes parses the same way as the full decoder reads it.
	for _, r := range []wire.Response{
		{Xid: 99, Zxid: 1 << 40, Err: wire.BadVersion, Msg: "m", Stat: &wire.Stat{Version: 3}},
		{Xid: 1, Zxid: 5, Path: "/bench/eseq/n-0000000001", Stat: &wire.Stat{}},
	} {
		b := r.AppendJSON(nil)
		h, ok := parseHead(b, codes)
		if !ok || h.xid != r.Xid || h.code != r.Err {
			t.Errorf("parseHead(%s) = %+v, %v", b, h, ok)
		}
	}
}

func TestStringField(t *testing.T) {
	b := (&wire.Response{Xid: 1, Path: "/bench/eseq/n-0000000042", Stat: &wire.Stat{}}).AppendJSON(nil)
	if p, ok := stringField(b, "path"); !ok || p != "/bench/eseq/n-0000000042" {
		t.Errorf("stringField = %q, %v", p, ok)
	}
	if _, ok := stringField([]byte(`{"path":"a\"b"}`), "path"); ok {
		t.Errorf("escaped string accepted")
	}
	if _, ok := stringField([]byte(`{"xid":1}`), "path"); ok {
		t.Errorf("absent field found")
	}
}

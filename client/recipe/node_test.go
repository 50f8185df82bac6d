package recipe

import (
	"slices"
	"testing"
)

func TestParseChild(t *testing.T) {
	for _, tc := range []struct {
		name string
		want child
		ok   bool
	}{
		{"lock-00000000000003e9-0000000012", child{"lock-00000000000003e9-0000000012", "lock", 12}, true},
		{"item-0000000000", child{"item-0000000000", "item", 0}, true},
		{"write-0000000000000001-2147483647", child{"write-0000000000000001-2147483647", "write", 2147483647}, true},
		{"ready", child{}, false},
		{"lock-", child{}, false},
		{"lock-000000001", child{}, false},                   // nine digits
		{"lock-00000000000003e9x0000000012", child{}, false}, // no dash before the sequence
		{"-0000000012", child{}, false},                      // no kind
		{"lock-00000000000003e9-00000000-1", child{}, false},
		{"0000000012", child{}, false},
	} {
		got, ok := parseChild(tc.name)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseChild(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParticipantsSortBySequence(t *testing.T) {
	names := []string{
		"write-00000000000000ff-0000000003",
		"read-0000000000000001-0000000001",
		"ready",
		"read-00000000000000aa-0000000002",
		"lock-0000000000000001-0000000000",
	}
	var got []string
	for _, c := range participants(names, kindRead, kindWrite) {
		got = append(got, c.name)
	}
	want := []string{"read-0000000000000001-0000000001", "read-00000000000000aa-0000000002", "write-00000000000000ff-0000000003"}
	if !slices.Equal(got, want) {
		t.Fatalf("participants = %v, want %v", got, want)
	}
	if n := len(participants(names)); n != 4 {
		t.Fatalf("all kinds: %d participants", n)
	}
	kids := participants(names, kindRead, kindWrite)
	if bs := readBlockers(kids, 2); len(bs) != 0 {
		t.Fatalf("a writer is blocked by no reader for reading: %v", bs)
	}
	kids = participants(append(names, "read-0000000000000002-0000000004"), kindRead, kindWrite)
	if bs := readBlockers(kids, 3); len(bs) != 1 || bs[0].kind != kindWrite {
		t.Fatalf("a reader after a writer waits for it: %v", bs)
	}
	if bs := exclusive(kids, 3); len(bs) != 3 {
		t.Fatalf("exclusive blockers %v", bs)
	}
}

func TestJoinAndValidDir(t *testing.T) {
	if join("/", "a") != "/a" || join("/a", "b") != "/a/b" {
		t.Fatal("join")
	}
	for _, bad := range []string{"", "/", "a", "/a/"} {
		if validDir(bad) == nil {
			t.Errorf("validDir(%q) accepted", bad)
		}
	}
	if validDir("/a/b") != nil {
		t.Error("validDir(/a/b) refused")
	}
}

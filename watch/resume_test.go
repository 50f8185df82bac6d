package watch

import (
	"fmt"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

func TestResumeEvent(t *testing.T) {
	node := func(mzxid, pzxid int64) *znode.Node {
		return &znode.Node{Path: "/a", Stat: wire.Stat{Czxid: 3, Mzxid: mzxid, Pzxid: pzxid}}
	}
	const last = 10
	tests := []struct {
		kind Kind
		node *znode.Node
		ev   wire.EventType // "" means: no event, register the watch
	}{
		{Data, nil, wire.EventNodeDeleted},
		{Data, node(11, 3), wire.EventNodeDataChanged},
		{Data, node(10, 3), ""},
		{Data, node(9, 50), ""}, // a child change is not a data change
		{Exist, nil, ""},
		{Exist, node(3, 3), wire.EventNodeCreated}, // created, whatever its zxids
		{Exist, node(11, 11), wire.EventNodeCreated},
		{Child, nil, wire.EventNodeDeleted},
		{Child, node(3, 11), wire.EventNodeChildrenChanged},
		{Child, node(3, 10), ""},
		{Child, node(50, 9), ""}, // a data change is not a child change
		{Persistent, nil, ""},
		{Persistent, node(11, 11), ""},
		{PersistentRecursive, nil, ""},
		{PersistentRecursive, node(11, 11), ""},
		{0, nil, ""},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v/absent", tt.kind)
		if tt.node != nil {
			name = fmt.Sprintf("%v/mzxid=%d,pzxid=%d", tt.kind, tt.node.Stat.Mzxid, tt.node.Stat.Pzxid)
		}
		t.Run(name, func(t *testing.T) {
			ev, fire := ResumeEvent(tt.kind, tt.node, last)
			if ev != tt.ev || fire != (tt.ev != "") {
				t.Fatalf("ResumeEvent = %q, %v; want %q, %v", ev, fire, tt.ev, tt.ev != "")
			}
		})
	}
}

package watch

import (
	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

// ResumeEvent applies ZooKeeper's set_watches rule (DataTree.setWatches) to
// one one-shot watch that a resuming client re-arms: k is the list the path
// came in (Data for `data`, Exist for `exist`, Child for `children`), node is
// the node as it is now (nil when absent) and lastZxid the client's last_zxid.
//
//	Data   node absent → NodeDeleted; mzxid > lastZxid → NodeDataChanged
//	Exist  node present → NodeCreated
//	Child  node absent → NodeDeleted; pzxid > lastZxid → NodeChildrenChanged
//
// When fire is true the server sends ev for that path at once and does not
// register the watch (it fired); otherwise it registers the watch with Add.
// Persistent kinds are resumed by replaying the log, not by this rule:
// ResumeEvent never fires for them.
//
// An exist watch fires for any present node, whatever its czxid, as in
// ZooKeeper: the client set it on an absent node, so a present one was
// created since, and a spurious event is safer than a missed one.
func ResumeEvent(k Kind, node *znode.Node, lastZxid int64) (ev wire.EventType, fire bool) {
	switch k {
	case Data:
		switch {
		case node == nil:
			return wire.EventNodeDeleted, true
		case node.Stat.Mzxid > lastZxid:
			return wire.EventNodeDataChanged, true
		}
	case Exist:
		if node != nil {
			return wire.EventNodeCreated, true
		}
	case Child:
		switch {
		case node == nil:
			return wire.EventNodeDeleted, true
		case node.Stat.Pzxid > lastZxid:
			return wire.EventNodeChildrenChanged, true
		}
	}
	return "", false
}

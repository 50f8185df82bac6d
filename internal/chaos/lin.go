package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/coord-dev/coord/internal/wire"
)

// The LIN checker: a history of operations on single znodes ("keys"),
// checked against a sequential model of one znode with porcupine. Every
// operation touches one key, so the history is checked key by key.

// LinOp is the kind of a LIN operation.
type LinOp uint8

// The LIN operations.
const (
	LinGet      LinOp = iota // get
	LinSet                   // set, any version or a given one (Version >= 0)
	LinCreate                // create (persistent)
	LinDelete                // delete, any version or a given one
	LinMultiSet              // multi [check(key, Version), set(key, Value, -1)]
	LinRecreate              // multi [delete(key, Version), create(key, Value)]
)

func (o LinOp) String() string {
	return [...]string{"get", "set", "create", "delete", "check+set", "delete+create"}[o]
}

// LinInput is what a LIN operation asked.
type LinInput struct {
	Op      LinOp
	Key     string
	Value   string
	Version int32 // -1: any
}

// LinOutput is what it got. Unknown means the outcome was lost (a
// connection loss, a timeout, an expired session): the operation may or
// may not have taken effect, at any time after it was invoked.
type LinOutput struct {
	Unknown bool
	Err     wire.Code
	Value   string // get
	Version int32  // get, set, create: the node's version afterwards
}

// linState is one znode: absent, or present with a value and a version.
type linState struct {
	Exists  bool
	Value   string
	Version int32
}

// linStep applies in to s: the next state and the outcome the model
// expects.
func linStep(s linState, in LinInput) (linState, LinOutput) {
	match := s.Exists && (in.Version < 0 || in.Version == s.Version)
	fail := func() LinOutput {
		if !s.Exists {
			return LinOutput{Err: wire.NoNode}
		}
		return LinOutput{Err: wire.BadVersion}
	}
	switch in.Op {
	case LinGet:
		if !s.Exists {
			return s, LinOutput{Err: wire.NoNode}
		}
		return s, LinOutput{Value: s.Value, Version: s.Version}
	case LinSet, LinMultiSet:
		if !match {
			return s, fail()
		}
		n := linState{Exists: true, Value: in.Value, Version: s.Version + 1}
		return n, LinOutput{Version: n.Version}
	case LinCreate:
		if s.Exists {
			return s, LinOutput{Err: wire.NodeExists}
		}
		return linState{Exists: true, Value: in.Value}, LinOutput{}
	case LinDelete:
		if !match {
			return s, fail()
		}
		return linState{}, LinOutput{}
	case LinRecreate:
		if !match {
			return s, fail()
		}
		return linState{Exists: true, Value: in.Value}, LinOutput{}
	}
	panic(fmt.Sprintf("unknown LIN op %d", in.Op))
}

// LinModel is the sequential specification of one znode.
var LinModel = porcupine.Model{
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(linState), input.(LinInput), output.(LinOutput)
		next, want := linStep(s, in)
		if out.Unknown {
			// It took effect here, or never (then linearize it last).
			return true, next
		}
		if out.Err == wire.QuotaExceeded {
			// Refused before it was proposed: it took no effect.
			return true, s
		}
		if want.Err != out.Err {
			return false, s
		}
		switch {
		case want.Err != wire.OK:
		case in.Op == LinGet:
			if want.Value != out.Value || want.Version != out.Version {
				return false, s
			}
		case in.Op == LinSet || in.Op == LinMultiSet:
			if want.Version != out.Version {
				return false, s
			}
		}
		return true, next
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(LinInput), output.(LinOutput)
		var b strings.Builder
		fmt.Fprintf(&b, "%s(%s", in.Op, in.Key)
		if in.Value != "" {
			fmt.Fprintf(&b, ", %q", in.Value)
		}
		if in.Version >= 0 && in.Op != LinGet && in.Op != LinCreate {
			fmt.Fprintf(&b, ", v%d", in.Version)
		}
		b.WriteString(") -> ")
		switch {
		case out.Unknown:
			b.WriteString("unknown")
		case out.Err != wire.OK:
			b.WriteString(string(out.Err))
		case in.Op == LinGet:
			fmt.Fprintf(&b, "%q v%d", out.Value, out.Version)
		case in.Op == LinSet || in.Op == LinMultiSet:
			fmt.Fprintf(&b, "ok v%d", out.Version)
		default:
			b.WriteString("ok")
		}
		return b.String()
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		if !s.Exists {
			return "absent"
		}
		return fmt.Sprintf("%q v%d", s.Value, s.Version)
	},
}

// LinHistory records LIN operations from many goroutines.
type LinHistory struct {
	start time.Time
	mu    struct {
		sync.Mutex
		ops     []porcupine.Operation
		clients int
	}
}

// NewLinHistory starts a history; its timestamps count from now.
func NewLinHistory() *LinHistory { return &LinHistory{start: time.Now()} }

// Now returns the history's current timestamp.
func (h *LinHistory) Now() int64 { return int64(time.Since(h.start)) }

// NewClient returns a fresh client id for the visualization. A client
// whose operation's outcome is unknown takes a new id, since that
// operation may still be pending while the next one runs.
func (h *LinHistory) NewClient() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.clients++
	return h.mu.clients - 1
}

// Add records one operation invoked at call and answered at ret (ignored
// when the outcome is unknown).
func (h *LinHistory) Add(client int, in LinInput, call int64, out LinOutput, ret int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.ops = append(h.mu.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Len returns the number of operations recorded.
func (h *LinHistory) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.ops)
}

// Ops returns a copy of the operations recorded.
func (h *LinHistory) Ops() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.mu.ops...)
}

// LinResult is the LIN checker's verdict.
type LinResult struct {
	Ops, Unknown, Keys, Illegal, TimedOut int
	// Visualizations are the files written for illegal keys.
	Visualizations []string
	// Examples describe the first illegal keys.
	Examples []string
}

// Pass reports whether every key was proven linearizable.
func (r LinResult) Pass() bool { return r.Illegal == 0 && r.TimedOut == 0 }

// CheckLin checks a history key by key. Reads whose outcome is unknown say
// nothing and are dropped; writes whose outcome is unknown are given an
// endless interval (they may take effect at any time after their call).
// For each illegal key porcupine's visualization is written to visDir
// (when not empty). Each key's check gives up after timeout.
func CheckLin(ops []porcupine.Operation, timeout time.Duration, visDir string) LinResult {
	var r LinResult
	var end int64
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		end = max(end, op.Return, op.Call)
	}
	for _, op := range ops {
		in, out := op.Input.(LinInput), op.Output.(LinOutput)
		if out.Unknown {
			if in.Op == LinGet {
				continue
			}
			r.Unknown++
			op.Return = end + 1
		}
		r.Ops++
		byKey[in.Key] = append(byKey[in.Key], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r.Keys = len(keys)
	for _, k := range keys {
		res, info := porcupine.CheckOperationsVerbose(LinModel, byKey[k], timeout)
		switch res {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			r.TimedOut++
			continue
		}
		r.Illegal++
		if len(r.Examples) < 5 {
			r.Examples = append(r.Examples, fmt.Sprintf("key %s: %d operations, not linearizable:\n%s", k, len(byKey[k]), describeOps(byKey[k], 40)))
		}
		if visDir != "" {
			base := filepath.Join(visDir, "lin-"+strings.NewReplacer("/", "_").Replace(strings.TrimPrefix(k, "/")))
			if err := os.MkdirAll(visDir, 0o755); err == nil && porcupine.VisualizePath(LinModel, info, base+".html") == nil {
				r.Visualizations = append(r.Visualizations, base+".html")
				// The history itself, to replay the check.
				if b, err := json.Marshal(byKey[k]); err == nil {
					_ = os.WriteFile(base+".json", b, 0o644)
				}
			}
		}
	}
	return r
}

// describeOps lists up to max operations of a key in call order.
func describeOps(ops []porcupine.Operation, max int) string {
	ops = append([]porcupine.Operation(nil), ops...)
	sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	var b strings.Builder
	for i, op := range ops {
		if i == max {
			fmt.Fprintf(&b, "  … %d more\n", len(ops)-max)
			break
		}
		fmt.Fprintf(&b, "  c%-3d [%9.3fs, %9.3fs] %s\n", op.ClientId, float64(op.Call)/1e9, float64(op.Return)/1e9,
			LinModel.DescribeOperation(op.Input, op.Output))
	}
	return b.String()
}

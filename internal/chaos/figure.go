package chaos

import (
	"fmt"
	"strings"
)

// The verdicts of a figure.
const (
	Pass    = "PASS"
	Fail    = "FAIL"
	Invalid = "INVALID"
)

// Figure is one machine-readable result line:
//
//	FIGURE id=LIN ops=18211 illegal=0 faults=37 result=PASS
type Figure struct {
	ID     string
	Fields []string // key=value, in order
	Result string
	// Why lists the anomalies (FAIL) or the validity problems (INVALID).
	Why []string
}

// Add appends key=value.
func (f *Figure) Add(key string, value any) *Figure {
	f.Fields = append(f.Fields, fmt.Sprintf("%s=%v", key, value))
	return f
}

// Judge sets the result: FAIL when there are anomalies, else INVALID when
// the run (or this checker's part of it) was not valid, else PASS.
func (f *Figure) Judge(anomalies []string, invalid []string) *Figure {
	switch {
	case len(anomalies) > 0:
		f.Result, f.Why = Fail, anomalies
	case len(invalid) > 0:
		f.Result, f.Why = Invalid, invalid
	default:
		f.Result = Pass
	}
	return f
}

func (f Figure) String() string {
	var b strings.Builder
	b.WriteString("FIGURE id=")
	b.WriteString(f.ID)
	for _, kv := range f.Fields {
		b.WriteByte(' ')
		b.WriteString(kv)
	}
	b.WriteString(" result=")
	b.WriteString(f.Result)
	return b.String()
}
